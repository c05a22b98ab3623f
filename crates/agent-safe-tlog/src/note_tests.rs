//! Signed notes and checkpoints against the published vectors (Go's `sumdb/note` tests and
//! the C2SP signed-note specification's example), and bad input.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Hash;
use crate::note::*;

const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

#[test]
fn signs_and_verifies_as_the_published_vectors() {
    let signer = SignerKey::parse(GO_SKEY).unwrap();
    assert_eq!(signer.verifier().to_string(), GO_VKEY);
    assert_eq!(signer.secret_text(), GO_SKEY);
    // Ed25519 is deterministic: the same bytes as Go's example.
    assert_eq!(signer.sign(GO_TEXT).unwrap(), GO_NOTE);
    let verifier = VerifierKey::parse(GO_VKEY).unwrap();
    assert_eq!(Note::parse(GO_NOTE).unwrap().verify(&verifier).unwrap(), GO_TEXT);
    // The specification's example, from another implementation's key.
    let spec = VerifierKey::parse(SPEC_VKEY).unwrap();
    assert_eq!(spec.label(), "example.com/foo+530d903a");
    assert_eq!(
        Note::parse(SPEC_NOTE).unwrap().verify(&spec).unwrap(),
        "This is an example message.\n"
    );
    // Debug never shows the secret.
    assert_eq!(format!("{signer:?}"), "SignerKey(PeterNeumann+c74f20a3)");
}

#[test]
fn a_changed_note_another_key_or_a_bad_format_is_refused() {
    let verifier = VerifierKey::parse(GO_VKEY).unwrap();
    let changed = GO_NOTE.replace("cryptography", "Cryptography");
    assert_eq!(
        Note::parse(&changed).unwrap().verify(&verifier).unwrap_err().to_string(),
        "the signature by PeterNeumann+c74f20a3 does not verify (the note was changed, or signed \
         by another key of that name)"
    );
    let other = SignerKey::generate("PeterNeumann").unwrap();
    let err = Note::parse(GO_NOTE).unwrap().verify(other.verifier()).unwrap_err();
    assert!(matches!(err, NoteError::NotSigned { .. }), "{err}");
    for (note, fragment) in [
        ("no blank line\n\u{2014} a AAAA\n", "no blank line"),
        ("text\n\n- PeterNeumann AAAA\n", "em dash"),
        ("text\n\n\u{2014} PeterNeumann !!!\n", "not base64"),
        ("text\n\n\u{2014} PeterNeumann AAAA\n", "shorter than its key ID"),
        ("text\n\n\u{2014} PeterNeumann x08go/ZJ", "does not end with a newline"),
        ("te\u{7}xt\n\n\u{2014} PeterNeumann x08go/ZJ\n", "control character"),
    ] {
        let err = Note::parse(note).unwrap_err().to_string();
        assert!(err.starts_with("malformed note: ") && err.contains(fragment), "{note:?}: {err}");
    }
    let type_2 = format!("PeterNeumann+c74f20a3+{}", STANDARD.encode([2u8; 33]));
    let short = format!("PeterNeumann+c74f20a3+{}", STANDARD.encode([1u8; 20]));
    for (key, fragment) in [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lowercase hex"),
        (type_2.as_str(), "type 0x01"),
        (short.as_str(), "has 32 bytes"),
        ("PeterNeumann+c74f20a3+ARpc!", "not base64"),
        ("Peter Neumann+c74f20a3+ARpc", "white space"),
        ("PeterNeumann", "NAME+KEYID+KEY"),
    ] {
        let err = VerifierKey::parse(key).unwrap_err().to_string();
        assert!(err.contains(fragment), "{key}: {err}");
    }
    assert!(SignerKey::parse(GO_VKEY).unwrap_err().to_string().contains("PRIVATE+KEY"));
    assert!(SignerKey::generate("a+b").is_err());
    let signer = SignerKey::generate("log").unwrap();
    assert!(signer.sign("no newline").is_err());
    assert!(signer.sign("blank\n\nline\n").is_err());
}

#[test]
fn checkpoints_round_trip_and_refuse_bad_bodies() {
    let key = SignerKey::generate("audit.example.com/prod").unwrap();
    let checkpoint = Checkpoint {
        origin: "audit.example.com/prod".to_owned(),
        size: 8,
        root: Hash::from_hex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
            .unwrap(),
        extensions: vec![],
    };
    assert_eq!(
        checkpoint.body(),
        "audit.example.com/prod\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    );
    let note = checkpoint.sign(&key).unwrap();
    assert_eq!(Checkpoint::open(&note, key.verifier()).unwrap(), checkpoint);
    // Signed by a key of another name: refused when signing and when opening.
    let other = SignerKey::generate("another-log").unwrap();
    assert!(checkpoint.sign(&other).is_err());
    let foreign = Checkpoint { origin: "another-log".to_owned(), ..checkpoint.clone() };
    let err = Checkpoint::open(&foreign.sign(&other).unwrap(), key.verifier()).unwrap_err();
    assert!(matches!(err, NoteError::NotSigned { .. }), "{err}");
    for (body, fragment) in [
        ("log\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "leading zeros"),
        ("log\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "decimal"),
        ("log\n8\nAAAA\n", "32 bytes"),
        ("log\n8\nXcnaea!\n", "not base64"),
        ("log\n8\n", "no root hash line"),
        ("\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "no origin"),
    ] {
        let err = Checkpoint::parse(body).unwrap_err().to_string();
        assert!(
            err.starts_with("malformed checkpoint: ") && err.contains(fragment),
            "{body:?}: {err}"
        );
    }
    let with_ext = "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextra line\n";
    let parsed = Checkpoint::parse(with_ext).unwrap();
    assert_eq!((parsed.size, parsed.extensions.clone()), (0, vec!["extra line".to_owned()]));
    assert_eq!(parsed.root, Hash::empty());
    assert_eq!(parsed.body(), with_ext);
}

/// Cloudflare's `signed_note` (a port of Go's `sumdb/note`), an independent implementation:
/// it verifies our checkpoints and signs notes that we verify, with keys in either form.
#[test]
fn an_independent_implementation_agrees_both_ways() {
    use signed_note::{StandardSigner, StandardVerifier, VerifierList};
    let ours = SignerKey::generate("audit.example.com/prod").unwrap();
    let vkey = ours.verifier().to_string();
    let checkpoint = Checkpoint {
        origin: "audit.example.com/prod".to_owned(),
        size: 42,
        root: crate::leaf_hash(b"root"),
        extensions: vec![],
    };
    // Theirs verifies ours.
    let note = checkpoint.sign(&ours).unwrap();
    let theirs = signed_note::Note::from_bytes(note.as_bytes()).unwrap();
    let known = VerifierList::new(vec![Box::new(StandardVerifier::new(&vkey).unwrap())]);
    let (verified, _) = theirs.verify(&known).unwrap();
    assert_eq!(verified.len(), 1);
    assert_eq!(theirs.text(), checkpoint.body().as_bytes());
    // A changed byte fails there too.
    let changed = note.replace("\n42\n", "\n43\n");
    let theirs = signed_note::Note::from_bytes(changed.as_bytes()).unwrap();
    assert!(theirs.verify(&known).is_err());
    // Ours verifies theirs: their signer, our key's text.
    let signer = StandardSigner::new(&ours.secret_text()).unwrap();
    let mut theirs = signed_note::Note::new(checkpoint.body().as_bytes(), &[]).unwrap();
    theirs.add_sigs(&[&signer]).unwrap();
    let bytes = String::from_utf8(theirs.to_bytes()).unwrap();
    assert_eq!(Checkpoint::open(&bytes, ours.verifier()).unwrap(), checkpoint);
    assert_eq!(bytes, note, "Ed25519 is deterministic: the same note byte for byte");
}
