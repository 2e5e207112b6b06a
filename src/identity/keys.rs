//! Key files on disk: secret files that are never readable by others, public files, and the
//! node's ed25519 signing key in a small text format.
//!
//! Secrets are created with mode 0600 from the first byte (never written and then chmod-ed),
//! and a key file that group or others can read is refused on load, the way ssh refuses an
//! exposed identity file: a key that has been readable by others must be treated as leaked.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand::rngs::OsRng;

/// File mode of secret files: owner read and write only.
const SECRET_MODE: u32 = 0o600;
/// File mode of public files: world readable, owner writable.
const PUBLIC_MODE: u32 = 0o644;
/// Mode of directories created to hold secret files, so their names are not listed to others.
const SECRET_DIR_MODE: u32 = 0o700;
/// Mode of directories created to hold public files.
const PUBLIC_DIR_MODE: u32 = 0o755;
/// Permission bits that must be clear on a secret file (group and other).
const INSECURE_BITS: u32 = 0o077;

/// First line of an ed25519 signing key file.
const SIGNING_KEY_BEGIN: &str = "-----BEGIN CIRFED ED25519 PRIVATE KEY-----";
/// Last line of an ed25519 signing key file.
const SIGNING_KEY_END: &str = "-----END CIRFED ED25519 PRIVATE KEY-----";
/// Length of an ed25519 seed, the whole secret from which the key pair is derived.
const SEED_LEN: usize = 32;
/// Largest key file read, so a wrong path (a log, a device) is refused instead of slurped.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Errors from reading and writing key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The target exists and the caller did not ask to replace it.
    #[error("{} already exists; pass --force to overwrite it", .path.display())]
    AlreadyExists { path: PathBuf },
    /// The key file does not exist.
    #[error("key file {} not found", .path.display())]
    NotFound { path: PathBuf },
    /// The key file exists but could not be opened or read.
    #[error("cannot read key file {}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file or one of its parent directories could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The key file was read but does not hold a key in the expected format.
    #[error("key file {} is corrupt: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The key file can be read by group or others, so it is refused like ssh does.
    #[error(
        "key file {} has permissions {mode:04o}, which let group or others access it; run chmod 600 on it",
        .path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// Writes a secret file with mode 0600, refusing to replace an existing file unless `force`.
pub fn write_secret(path: &Path, contents: &[u8], force: bool) -> Result<(), KeyFileError> {
    write_with_mode(path, contents, force, SECRET_MODE, SECRET_DIR_MODE)
}

/// Writes a public file with mode 0644, refusing to replace an existing file unless `force`.
pub fn write_public(path: &Path, contents: &[u8], force: bool) -> Result<(), KeyFileError> {
    write_with_mode(path, contents, force, PUBLIC_MODE, PUBLIC_DIR_MODE)
}

/// Reads a secret file, refusing it when group or others have any access to it.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let mut file = File::open(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => KeyFileError::NotFound { path: path.to_owned() },
        _ => KeyFileError::Unreadable { path: path.to_owned(), source },
    })?;
    // Check the mode of the file we opened (fstat), not of the path, so a swap between the
    // check and the read cannot slip an exposed file past us.
    let metadata = file.metadata().map_err(|source| KeyFileError::Unreadable { path: path.to_owned(), source })?;
    if !metadata.is_file() {
        return Err(KeyFileError::Corrupt { path: path.to_owned(), reason: "not a regular file".to_owned() });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & INSECURE_BITS != 0 {
        return Err(KeyFileError::InsecurePermissions { path: path.to_owned(), mode });
    }
    if metadata.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::Corrupt {
            path: path.to_owned(),
            reason: format!("{} bytes is larger than any key file", metadata.len()),
        });
    }
    let mut contents = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut contents).map_err(|source| KeyFileError::Unreadable { path: path.to_owned(), source })?;
    Ok(contents)
}

/// Generates a new ed25519 signing key from the operating system's random source.
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut OsRng)
}

/// Writes an ed25519 signing key as a hex seed between CIRFED header and footer lines, mode 0600.
pub fn write_signing_key(path: &Path, key: &SigningKey, force: bool) -> Result<(), KeyFileError> {
    let text = format!("{SIGNING_KEY_BEGIN}\n{}\n{SIGNING_KEY_END}\n", hex::encode(key.as_bytes()));
    write_secret(path, text.as_bytes(), force)
}

/// Reads an ed25519 signing key written by [`write_signing_key`], checking permissions and format.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let contents = read_secret(path)?;
    let corrupt = |reason: &str| KeyFileError::Corrupt { path: path.to_owned(), reason: reason.to_owned() };
    let text = std::str::from_utf8(&contents).map_err(|_| corrupt("not utf-8 text"))?;
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    if lines.next() != Some(SIGNING_KEY_BEGIN) {
        return Err(corrupt("missing the CIRFED ED25519 PRIVATE KEY header line"));
    }
    let body = lines.next().ok_or_else(|| corrupt("no key between header and footer"))?;
    if body == SIGNING_KEY_END {
        return Err(corrupt("no key between header and footer"));
    }
    if lines.next() != Some(SIGNING_KEY_END) {
        return Err(corrupt("missing the CIRFED ED25519 PRIVATE KEY footer line after one line of key"));
    }
    if lines.next().is_some() {
        return Err(corrupt("unexpected text after the footer line"));
    }
    let seed = hex::decode(body).map_err(|_| corrupt("key is not hex"))?;
    let seed: [u8; SEED_LEN] = seed
        .try_into()
        .map_err(|seed: Vec<u8>| corrupt(&format!("key is {} bytes, expected {SEED_LEN}", seed.len())))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates missing parent directories of `path` with `dir_mode`.
fn create_parents(path: &Path, dir_mode: u32) -> Result<(), KeyFileError> {
    let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) else {
        return Ok(());
    };
    DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(parent)
        .map_err(|source| KeyFileError::Write { path: parent.to_owned(), source })
}

fn write_with_mode(path: &Path, contents: &[u8], force: bool, mode: u32, dir_mode: u32) -> Result<(), KeyFileError> {
    create_parents(path, dir_mode)?;
    if force {
        return replace_atomically(path, contents, mode);
    }
    // create_new (O_EXCL) both refuses an existing file and refuses to follow a symlink planted
    // at `path`, so the secret cannot be redirected elsewhere.
    let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::AlreadyExists { path: path.to_owned() });
        }
        Err(source) => return Err(KeyFileError::Write { path: path.to_owned(), source }),
    };
    if let Err(source) = fill(file, contents, mode) {
        // A half-written key is worse than none: it would block the retry without --force.
        let _ = fs::remove_file(path);
        return Err(KeyFileError::Write { path: path.to_owned(), source });
    }
    Ok(())
}

/// Replaces `path` by writing a fresh file beside it and renaming it into place.
///
/// Truncating the old file in place would let anyone who already holds it open (it may have
/// been world readable) read the new secret, and a crash would leave a torn key; a rename
/// gives readers either the old file or the complete new one.
fn replace_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyFileError> {
    let write_err = |source| KeyFileError::Write { path: path.to_owned(), source };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err(io::Error::new(io::ErrorKind::InvalidInput, "path has no file name")))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp_path = path.with_file_name(temp_name);
    // A temp file left by a crashed earlier run of this process id is ours to discard.
    let _ = fs::remove_file(&temp_path);
    let file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp_path).map_err(write_err)?;
    let result = fill(file, contents, mode).and_then(|()| fs::rename(&temp_path, path));
    if let Err(source) = result {
        let _ = fs::remove_file(&temp_path);
        return Err(write_err(source));
    }
    Ok(())
}

/// Sets the exact mode, writes `contents` and flushes them to disk.
fn fill(mut file: File, contents: &[u8], mode: u32) -> io::Result<()> {
    // The mode given at creation is masked by the umask; set it explicitly so a public file is
    // really 0644 and a secret file really 0600 whatever the umask.
    file.set_permissions(Permissions::from_mode(mode))?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn secret_files_are_created_with_mode_0600_in_new_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/nested/tls.key");
        write_secret(&path, b"secret", false).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"secret");
        assert_eq!(mode_of(path.parent().unwrap()) & INSECURE_BITS, 0);
    }

    #[test]
    fn public_files_are_created_with_mode_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        write_public(&path, b"public", false).unwrap();
        assert_eq!(mode_of(&path), 0o644);
    }

    #[test]
    fn existing_file_is_not_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_secret(&path, b"first", false).unwrap();
        let err = write_secret(&path, b"second", false).unwrap_err();
        assert!(matches!(err, KeyFileError::AlreadyExists { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("--force"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn force_overwrites_and_leaves_the_secret_at_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_public(&path, b"a longer first version", false).unwrap();
        write_secret(&path, b"second", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(mode_of(&path), 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("signing.key")]);
    }

    #[test]
    fn force_creates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.key");
        write_secret(&path, b"fresh", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"fresh");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn signing_key_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let key = generate_signing_key();
        write_signing_key(&path, &key, false).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN CIRFED ED25519 PRIVATE KEY-----\n"), "{text}");
        assert!(text.ends_with("-----END CIRFED ED25519 PRIVATE KEY-----\n"), "{text}");
        let read = read_signing_key(&path).unwrap();
        assert_eq!(read.to_bytes(), key.to_bytes());
        assert_eq!(read.verifying_key(), key.verifying_key());
    }

    #[test]
    fn generated_signing_keys_differ() {
        assert_ne!(generate_signing_key().to_bytes(), generate_signing_key().to_bytes());
    }

    fn assert_corrupt(contents: &str, expected_reason: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_secret(&path, contents.as_bytes(), false).unwrap();
        match read_signing_key(&path) {
            Err(KeyFileError::Corrupt { path: err_path, reason }) => {
                assert_eq!(err_path, path);
                assert!(reason.contains(expected_reason), "reason {reason:?} lacks {expected_reason:?}");
            }
            other => panic!("expected a corrupt key error for {contents:?}, got {other:?}"),
        }
    }

    #[test]
    fn key_file_with_bad_hex_is_corrupt() {
        let body = "zz".repeat(SEED_LEN);
        assert_corrupt(&format!("{SIGNING_KEY_BEGIN}\n{body}\n{SIGNING_KEY_END}\n"), "not hex");
    }

    #[test]
    fn key_file_with_wrong_length_is_corrupt() {
        let body = "ab".repeat(SEED_LEN - 1);
        assert_corrupt(&format!("{SIGNING_KEY_BEGIN}\n{body}\n{SIGNING_KEY_END}\n"), "31 bytes, expected 32");
    }

    #[test]
    fn key_file_with_garbage_is_corrupt() {
        assert_corrupt("this is not a key\n", "header");
        assert_corrupt("", "header");
        let body = "ab".repeat(SEED_LEN);
        assert_corrupt(&format!("{SIGNING_KEY_BEGIN}\n{body}\n"), "footer");
        assert_corrupt(&format!("{SIGNING_KEY_BEGIN}\n{SIGNING_KEY_END}\n"), "no key");
        assert_corrupt(&format!("{SIGNING_KEY_BEGIN}\n{body}\n{SIGNING_KEY_END}\nmore\n"), "after the footer");
        assert_corrupt("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n", "header");
    }

    #[test]
    fn key_file_that_is_not_utf8_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_secret(&path, &[0xff, 0xfe, 0x00, 0x80], false).unwrap();
        assert!(matches!(read_signing_key(&path), Err(KeyFileError::Corrupt { .. })));
    }

    #[test]
    fn world_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_signing_key(&path, &generate_signing_key(), false).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        match read_signing_key(&path) {
            Err(KeyFileError::InsecurePermissions { path: err_path, mode }) => {
                assert_eq!(err_path, path);
                assert_eq!(mode, 0o644);
            }
            other => panic!("expected insecure permissions, got {other:?}"),
        }
        let message = read_signing_key(&path).unwrap_err().to_string();
        assert!(message.contains("0644") && message.contains("chmod 600"), "{message}");
    }

    #[test]
    fn group_readable_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        write_signing_key(&path, &generate_signing_key(), false).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(read_signing_key(&path), Err(KeyFileError::InsecurePermissions { mode: 0o640, .. })));
    }

    #[test]
    fn missing_key_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.key");
        match read_signing_key(&path) {
            Err(KeyFileError::NotFound { path: err_path }) => assert_eq!(err_path, path),
            other => panic!("expected not found, got {other:?}"),
        }
        let message = read_signing_key(&path).unwrap_err().to_string();
        assert!(message.contains("absent.key") && message.contains("not found"), "{message}");
    }

    #[test]
    fn directory_in_place_of_a_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        DirBuilder::new().mode(0o700).create(&path).unwrap();
        let err = read_signing_key(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn key_file_that_cannot_be_opened_is_unreadable() {
        // Permission bits do not stop root, so the open is made to fail by a file standing
        // where a directory of the path should be.
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("plain");
        write_public(&not_a_dir, b"x", false).unwrap();
        let path = not_a_dir.join("signing.key");
        let err = read_signing_key(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Unreadable { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot read key file"), "{err}");
    }
}
