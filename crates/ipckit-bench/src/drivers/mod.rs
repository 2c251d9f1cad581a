pub mod iceoryx;
