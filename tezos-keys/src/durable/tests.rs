//! The durable files, on a real file system.

#![allow(clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use super::*;

fn names(dir: &Path) -> Vec<OsString> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
}

#[test]
fn write_new_writes_once_with_mode_0600_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup.json");
    write_new(&path, b"one").unwrap();
    let err = write_new(&path, b"two").unwrap_err();
    assert!(matches!(err, DurableError::Exists { .. }), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"one");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(names(dir.path()), ["backup.json"]);
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    fs::write(&outside, b"precious").unwrap();
    let link = dir.path().join("record.json");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let err = read_regular(&link, 100).unwrap_err();
    assert_eq!(err.kind(), "not_regular_file", "{err}");
    assert!(err.to_string().contains("is a symbolic link"), "{err}");
    assert_eq!(write_new(&link, b"x").unwrap_err().kind(), "file_exists");
    let err = open_lock_file(&link).unwrap_err();
    assert_eq!(err.kind(), "not_regular_file", "{err}");
    replace(&link, b"new").unwrap(); // replaces the link itself
    assert_eq!(fs::read(&outside).unwrap(), b"precious");
    assert!(fs::symlink_metadata(&link).unwrap().is_file());
}

#[test]
fn reads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    fs::write(&path, [b'x'; 101]).unwrap();
    assert_eq!(
        read_regular(&path, 100).unwrap_err().kind(),
        "file_too_large"
    );
    assert_eq!(read_regular(&path, 101).unwrap().unwrap().len(), 101);
    assert_eq!(read_regular(&dir.path().join("none"), 1).unwrap(), None);
    let err = read_regular(dir.path(), 1).unwrap_err();
    assert_eq!(err.kind(), "not_regular_file", "{err}");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let err = read_regular(&fifo, 100).unwrap_err();
    assert!(
        err.to_string().ends_with("is a FIFO, not a regular file"),
        "{err}"
    );
    assert_eq!(
        open_lock_file(&fifo).unwrap_err().kind(),
        "not_regular_file"
    );
}

#[cfg(unix)]
#[test]
fn directories_others_can_write_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b");
    assert_eq!(
        check_private_dir(&dir).unwrap_err().kind(),
        "directory_missing"
    );
    create_private_dir(&dir).unwrap();
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    create_private_dir(&dir).unwrap(); // already there: fine
    for (mode, who) in [
        (0o770, "its group"),
        (0o777, "group and others"),
        (0o702, "others"),
    ] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
        let err = check_private_dir(&dir).unwrap_err();
        assert_eq!(err.kind(), "directory_unsafe");
        let text = err.to_string();
        assert!(text.contains(&format!("is writable by {who}")), "{text}");
        assert!(
            text.contains(&format!("chmod 700 {}", dir.display())),
            "{text}"
        );
        assert_eq!(
            create_private_dir(&dir).unwrap_err().kind(),
            "directory_unsafe"
        );
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    check_private_dir(&dir).unwrap(); // readable by others is fine
}

#[cfg(unix)]
#[test]
fn a_directory_inside_one_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    let dir = shared.join("watermarks");
    create_private_dir(&dir).unwrap();
    // Group-writable parent: a group member could rename `watermarks` away and plant a
    // symbolic link to another directory of the owner's in its place.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o775)).unwrap();
    let err = check_private_dir(&dir).unwrap_err();
    assert_eq!(err.kind(), "directory_unsafe");
    assert!(
        err.to_string()
            .contains(&format!("chmod go-w {}", shared.display())),
        "{err}"
    );
    // The same through a symbolic link: the resolved path's parents are checked.
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    assert_eq!(
        check_private_dir(&link).unwrap_err().kind(),
        "directory_unsafe"
    );
    // Sticky and shared, as /tmp: only an entry's owner may rename it there.
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    check_private_dir(&dir).unwrap();
    check_private_dir(&link).unwrap();
}
