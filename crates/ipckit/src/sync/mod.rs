//! Synchronisation across processes: futexes, events, POSIX and System V semaphores, robust
//! mutexes and read-write locks living in shared memory.
