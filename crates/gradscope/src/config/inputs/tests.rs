use super::*;

/// A .npy file built byte by byte from NumPy's format description (version 1.0).
pub(in crate::config) fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn npy_f32_and_f64_read_back() {
    let f32s: Vec<u8> = [1.5f32, -2.0, 0.25, 4.0, 5.0, 6.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let t = read_npy(&npy("<f4", "(2, 3)", &f32s)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (t.shape, t.data),
        (vec![2, 3], vec![1.5, -2.0, 0.25, 4.0, 5.0, 6.0])
    );
    let f64s: Vec<u8> = [0.5f64, 1.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let t = read_npy(&npy("<f8", "(1, 2)", &f64s)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((t.shape, t.data), (vec![1, 2], vec![0.5, 1.0]));
}

#[test]
fn npy_problems_are_named() {
    assert_eq!(read_npy(b"hello"), Err(Problem::Npy("no NUMPY magic")));
    // Big-endian floats and complex numbers are not read.
    for descr in [">f4", "<c8", "|b1"] {
        assert_eq!(
            read_npy(&npy(descr, "(1, 1)", &[0; 8])),
            Err(Problem::NpyType(descr.into()))
        );
    }
    assert_eq!(
        read_npy(&npy("<f4", "(2, 3)", &[0; 8])),
        Err(Problem::DataLength {
            found: 8,
            shape: vec![2, 3],
            needed: 24
        })
    );
}

#[test]
fn safetensors_written_by_hand_from_the_spec_reads_back() {
    // Format: u64 little-endian header size N, N bytes of JSON header, then the data.
    let header = r#"{"input":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&3.0f32.to_le_bytes());
    bytes.extend_from_slice(&(-1.0f32).to_le_bytes());
    let t = read_safetensors(&bytes, "input", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((t.shape, t.data), (vec![1, 2], vec![3.0, -1.0]));
}

/// What `np.save` writes for integer labels: `<i8` (int64, NumPy's default on Linux), `<i4`
/// and `|u1` (uint8: one byte has no byte order).
#[test]
fn npy_integers_read_back_exactly() {
    let i8s: Vec<u8> = [-1i64, 0, 7, 1 << 24]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let t = read_npy(&npy("<i8", "(4,)", &i8s)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (t.shape, t.data),
        (vec![4], vec![-1.0, 0.0, 7.0, 16_777_216.0])
    );
    let i4s: Vec<u8> = [3i32, -2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let t = read_npy(&npy("<i4", "(2,)", &i4s)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.data, vec![3.0, -2.0]);
    let t = read_npy(&npy("|u1", "(3,)", &[0, 9, 255])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.data, vec![0.0, 9.0, 255.0]);
    // 0xffff as u2 is 65535, as i2 it is -1.
    let t = read_npy(&npy("<u2", "(1,)", &[0xff, 0xff])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.data, vec![65535.0]);
    let t = read_npy(&npy("<i2", "(1,)", &[0xff, 0xff])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.data, vec![-1.0]);
    // 2²⁴ + 1 = 16777217 is the smallest positive integer f32 cannot hold.
    let big: Vec<u8> = [5i64, (1 << 24) + 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(
        read_npy(&npy("<i8", "(2,)", &big)),
        Err(Problem::Inexact {
            index: 1,
            value: 16_777_217
        })
    );
    // u8::MAX as u64, 18446744073709551615, rounds to 2⁶⁴ in f32.
    assert_eq!(
        read_npy(&npy("<u8", "(1,)", &[0xff; 8])),
        Err(Problem::Inexact {
            index: 0,
            value: 18_446_744_073_709_551_615
        })
    );
}

/// An archive made by numpy 2.4.6's `np.savez` (and `np.savez_compressed`) from
/// x = (arange(12).reshape(4, 3) − 5.5)/4 as f4 and y = [0, 2, 1, 2] as i8; `one.npz` is
/// `np.savez("one.npz", x.astype(f8))`, its array unnamed (`arr_0`).
fn fixture(name: &str) -> Vec<u8> {
    // At run time, as tests/it/common's `manifest_dir`: a test binary of another checkout
    // sharing the target directory reads this one's fixtures.
    let dir = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{dir}/tests/it/fixtures/npz/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn npz_archives_from_numpy_read_back_by_name() {
    let xy = fixture("xy.npz");
    let x = read_npz(&xy, "input", Some("x")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(x.shape, [4, 3]);
    let want: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) / 4.0).collect();
    assert_eq!(x.data, want);
    let y = read_npz(&xy, "targets", Some("y")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (y.shape.as_slice(), y.data.as_slice()),
        (&[4][..], &[0.0, 2.0, 1.0, 2.0][..])
    );
    // Two arrays, neither named as the default: the names are listed.
    assert_eq!(
        read_npz(&xy, "input", None),
        Err(Problem::WhichArray {
            default: "input",
            available: vec!["x".into(), "y".into()]
        })
    );
    assert_eq!(
        read_npz(&xy, "input", Some("z")),
        Err(Problem::NoArray {
            name: "z".into(),
            available: vec!["x".into(), "y".into()]
        })
    );
    let one = read_npz(&fixture("one.npz"), "input", None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one.data, want, "f8 values, the only array");
}

#[test]
fn compressed_and_corrupt_archives_are_refused_with_a_reason() {
    let e = read_npz(&fixture("xy-compressed.npz"), "input", Some("x"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("member `x.npy` is compressed") && e.contains("np.savez"),
        "{e}"
    );
    let mut bad = fixture("xy.npz");
    // A byte of x's data (past its local header and .npy header) flipped.
    let at = bad.windows(6).position(|w| w == b"\x93NUMPY").unwrap_or(0) + 140;
    bad[at] ^= 0xff;
    let e = read_npz(&bad, "input", Some("x"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("corrupt"), "{e}");
}
