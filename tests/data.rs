//! The embedded MNIST-10k split and the image npz reader's refusals.

use ndarray::{Array1, Array2, Array4};
use ndarray_npy::NpzWriter;
use proxyrobust::data::{mnist10k, read_image_npz};

#[test]
fn mnist10k_is_the_documented_split() {
    let (train, test) = mnist10k().unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.shape(), [28, 28, 1]);
    let counts = |labels: &[i64]| (0..10).map(|y| labels.iter().filter(|&&l| l == y).count()).collect::<Vec<_>>();
    // Class counts from data/README.md.
    assert_eq!(counts(train.labels()), [809, 896, 793, 802, 803, 704, 813, 862, 753, 765]);
    assert_eq!(counts(test.labels()), [192, 231, 198, 230, 177, 159, 201, 208, 191, 213]);
    // Real digits: dark background, bright strokes, every image non-empty.
    for i in 0..train.len() {
        let image = &train.pixels()[i * 784..(i + 1) * 784];
        assert_eq!(image[0], 0);
        assert!(image.iter().any(|&p| p > 200));
    }
}

fn write(path: &std::path::Path, fill: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
    let mut w = NpzWriter::new(std::fs::File::create(path).unwrap());
    fill(&mut w);
    w.finish().unwrap();
}

#[test]
fn malformed_image_files_are_refused_with_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    write(&p("ok.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1))).unwrap();
        w.add_array("label", &Array1::<i64>::from(vec![0, 1, 2])).unwrap();
    });
    assert_eq!(read_image_npz(&p("ok.npz"), 3).unwrap().len(), 3);
    write(&p("nolabel.npz"), |w| w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1))).unwrap());
    write(&p("float.npz"), |w| {
        w.add_array("image", &Array4::<f32>::zeros((3, 4, 4, 1))).unwrap();
        w.add_array("label", &Array1::<u8>::zeros(3)).unwrap();
    });
    write(&p("flat.npz"), |w| {
        w.add_array("image", &Array2::<u8>::zeros((3, 16))).unwrap();
        w.add_array("label", &Array1::<u8>::zeros(3)).unwrap();
    });
    write(&p("count.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1))).unwrap();
        w.add_array("label", &Array1::<u8>::zeros(2)).unwrap();
    });
    write(&p("range.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1))).unwrap();
        w.add_array("label", &Array1::<u8>::from(vec![0, 1, 9])).unwrap();
    });
    std::fs::write(p("junk.npz"), b"junk").unwrap();
    for (name, needles) in [
        ("nolabel.npz", vec!["missing key `label`"]),
        ("float.npz", vec!["`image`", "uint8"]),
        ("flat.npz", vec!["`image`", "(N, H, W, C)"]),
        ("count.npz", vec!["2 entries, expected 3"]),
        ("range.npz", vec!["labels in 0..3, got 9"]),
        ("junk.npz", vec!["not a valid .npz"]),
    ] {
        let err = read_image_npz(&p(name), 3).unwrap_err().to_string();
        assert!(err.contains(name), "{err}");
        for n in needles {
            assert!(err.contains(n), "expected `{n}` in {err}");
        }
    }
}
