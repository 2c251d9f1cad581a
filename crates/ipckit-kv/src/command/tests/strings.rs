use super::T;

#[test]
fn set_get_and_options() {
    let mut t = T::new();
    assert_eq!(t.r2("SET k v"), "+OK\r\n");
    assert_eq!(t.r2("get k"), "$1\r\nv\r\n");
    assert_eq!(
        t.r2("get"),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
}
