//! The embedded MNIST-10k split and the image npz reader's refusals.

use ndarray::{Array1, Array2, Array4};
use ndarray_npy::NpzWriter;
use proxyrobust::data::{mnist10k, read_image_npz};

#[test]
fn mnist10k_is_the_documented_split() {
    let (train, test) = mnist10k().unwrap();
    assert_eq!((train.len(), test.len()), (8000, 2000));
    assert_eq!(train.shape(), [28, 28, 1]);
    let counts = |labels: &[i64]| {
        (0..10)
            .map(|y| labels.iter().filter(|&&l| l == y).count())
            .collect::<Vec<_>>()
    };
    // Class counts from data/README.md.
    assert_eq!(
        counts(train.labels()),
        [809, 896, 793, 802, 803, 704, 813, 862, 753, 765]
    );
    assert_eq!(
        counts(test.labels()),
        [192, 231, 198, 230, 177, 159, 201, 208, 191, 213]
    );
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
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1)))
            .unwrap();
        w.add_array("label", &Array1::<i64>::from(vec![0, 1, 2]))
            .unwrap();
    });
    assert_eq!(read_image_npz(&p("ok.npz"), 3).unwrap().len(), 3);
    write(&p("nolabel.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1)))
            .unwrap()
    });
    write(&p("float.npz"), |w| {
        w.add_array("image", &Array4::<f32>::zeros((3, 4, 4, 1)))
            .unwrap();
        w.add_array("label", &Array1::<u8>::zeros(3)).unwrap();
    });
    write(&p("flat.npz"), |w| {
        w.add_array("image", &Array2::<u8>::zeros((3, 16))).unwrap();
        w.add_array("label", &Array1::<u8>::zeros(3)).unwrap();
    });
    write(&p("count.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1)))
            .unwrap();
        w.add_array("label", &Array1::<u8>::zeros(2)).unwrap();
    });
    write(&p("range.npz"), |w| {
        w.add_array("image", &Array4::<u8>::zeros((3, 4, 4, 1)))
            .unwrap();
        w.add_array("label", &Array1::<u8>::from(vec![0, 1, 9]))
            .unwrap();
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

mod formats {
    use proxyrobust::data::formats::{Cifar, MappedImages, read_cifar, read_idx};

    /// A CIFAR record: label byte(s), then R, G, B planes of 1024 bytes; pixel i of plane c is
    /// `(c * 7 + i + seed) % 256`.
    fn cifar_record(labels: &[u8], seed: usize) -> Vec<u8> {
        let mut r = labels.to_vec();
        for c in 0..3 {
            r.extend((0..1024).map(|i| ((c * 7 + i + seed) % 256) as u8));
        }
        r
    }

    #[test]
    fn cifar_binary_becomes_hwc_with_the_right_labels() {
        let dir = tempfile::tempdir().unwrap();
        let ten = dir.path().join("data_batch_1.bin");
        std::fs::write(
            &ten,
            [cifar_record(&[3], 0), cifar_record(&[9], 5)].concat(),
        )
        .unwrap();
        let d = read_cifar(std::slice::from_ref(&ten), Cifar::Ten).unwrap();
        assert_eq!(
            (d.len(), d.shape(), d.labels()),
            (2, [32, 32, 3], &[3i64, 9][..])
        );
        // Image 1, pixel (row 0, col 2) = plane index 2: R = 7, G = 14, B = 21 (seed 5 shifts by 5).
        let at = 3072 + 2 * 3;
        assert_eq!(&d.pixels()[at..at + 3], &[7, 14, 21]);
        let hundred = dir.path().join("train.bin");
        std::fs::write(&hundred, cifar_record(&[1, 87], 0)).unwrap();
        assert_eq!(
            read_cifar(&[hundred], Cifar::Hundred).unwrap().labels(),
            &[87]
        );
        let truncated = dir.path().join("cut.bin");
        std::fs::write(&truncated, &cifar_record(&[1], 0)[..3000]).unwrap();
        let err = read_cifar(&[truncated], Cifar::Ten)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.bin") && err.contains("3073-byte CIFAR records"),
            "{err}"
        );
        let bad_label = dir.path().join("label.bin");
        std::fs::write(&bad_label, cifar_record(&[12], 0)).unwrap();
        assert!(
            read_cifar(&[bad_label], Cifar::Ten)
                .unwrap_err()
                .to_string()
                .contains("labels in 0..10")
        );
    }

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = magic.to_be_bytes().to_vec();
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn mnist_idx_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = (dir.path().join("img.idx"), dir.path().join("lab.idx"));
        std::fs::write(
            &images,
            idx(0x803, &[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        )
        .unwrap();
        std::fs::write(&labels, idx(0x801, &[2], &[7, 1])).unwrap();
        let d = read_idx(&images, &labels).unwrap();
        assert_eq!(
            (d.len(), d.shape(), d.labels(), &d.pixels()[6..8]),
            (2, [2, 3, 1], &[7i64, 1][..], &[7u8, 8][..])
        );
        std::fs::write(&labels, idx(0x801, &[3], &[7, 1, 2])).unwrap();
        assert!(
            read_idx(&images, &labels)
                .unwrap_err()
                .to_string()
                .contains("expected 2 labels")
        );
        std::fs::write(&images, idx(0x803, &[2, 2, 3], &[1, 2, 3])).unwrap();
        assert!(
            read_idx(&images, &labels)
                .unwrap_err()
                .to_string()
                .contains("header says 2 images of 2×3")
        );
        std::fs::write(&images, idx(0x802, &[2, 2, 3], &[0; 12])).unwrap();
        assert!(
            read_idx(&images, &labels)
                .unwrap_err()
                .to_string()
                .contains("not an IDX image file")
        );
    }

    #[test]
    fn mapped_bin_gathers_batches_and_checks_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("synthetic.bin");
        let per = 32 * 32 * 3;
        std::fs::write(
            &bin,
            (0..5 * per)
                .map(|i| (i / per * 10 + i % 3) as u8)
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let labels8 = dir.path().join("labels.npy");
        ndarray_npy::write_npy(&labels8, &ndarray::Array1::<u8>::from(vec![0, 1, 2, 3, 4]))
            .unwrap();
        let mapped = MappedImages::open(&bin, &labels8, 10).unwrap();
        assert_eq!(mapped.len(), 5);
        let batch = mapped.gather(&[4, 0]).unwrap();
        assert_eq!(batch.labels(), &[4, 0]);
        assert_eq!(&batch.pixels()[..3], &[40, 41, 42]);
        assert_eq!(&batch.pixels()[per..per + 3], &[0, 1, 2]);
        assert!(
            mapped
                .gather(&[5])
                .unwrap_err()
                .to_string()
                .contains("image 5 asked for")
        );
        let labels64 = dir.path().join("labels64.npy");
        ndarray_npy::write_npy(&labels64, &ndarray::Array1::<i64>::from(vec![0, 1, 2, 3])).unwrap();
        assert!(
            MappedImages::open(&bin, &labels64, 10)
                .err()
                .unwrap()
                .to_string()
                .contains("5 images but 4 labels")
        );
        std::fs::write(&bin, vec![0u8; per + 7]).unwrap();
        assert!(
            MappedImages::open(&bin, &labels8, 10)
                .err()
                .unwrap()
                .to_string()
                .contains("not a whole number of 32×32×3")
        );
    }
}

mod sources {
    use proxyrobust::data::DatasetSource;

    #[test]
    fn missing_user_data_says_where_to_put_it() {
        let err = DatasetSource::Cifar10("/nonexistent/cifar".into())
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dataset.cifar10")
                && err.contains("data_batch_1.bin does not exist")
                && err.contains("cifar-10-binary"),
            "{err}"
        );
        let err = DatasetSource::Mnist("/nonexistent/mnist".into())
            .load()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dataset.mnist") && err.contains("train-images-idx3-ubyte"),
            "{err}"
        );
    }

    #[test]
    fn a_cifar10_folder_in_the_real_format_loads() {
        let dir = tempfile::tempdir().unwrap();
        let record = |label: u8| {
            std::iter::once(label)
                .chain((0..3072).map(|i| (i % 251) as u8))
                .collect::<Vec<u8>>()
        };
        for i in 1..=5 {
            std::fs::write(
                dir.path().join(format!("data_batch_{i}.bin")),
                [record(i), record(0)].concat(),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("test_batch.bin"), record(7)).unwrap();
        let (train, test) = DatasetSource::Cifar10(dir.path().into()).load().unwrap();
        assert_eq!((train.len(), test.len(), train.num_classes()), (10, 1, 10));
        assert_eq!(&train.labels()[..4], &[1, 0, 2, 0]);
    }
}

/// A `side × side` RGB image whose every pixel is `color`.
fn save_image(path: &std::path::Path, width: u32, height: u32, color: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(width, height, image::Rgb(color))
        .save(path)
        .unwrap();
}

#[test]
fn image_folders_decode_crop_resize_and_label_by_sorted_class() {
    use proxyrobust::data::DatasetSource;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Non-square images of constant colour: the centre crop and resize keep the colour exactly.
    for split in ["train", "test"] {
        save_image(&root.join(split).join("dogs/a.png"), 40, 30, [200, 10, 10]);
        save_image(&root.join(split).join("dogs/b.jpg"), 30, 40, [200, 10, 10]);
        save_image(&root.join(split).join("cats/c.png"), 16, 16, [10, 200, 10]);
    }
    std::fs::write(root.join("train/cats/notes.txt"), "not an image").unwrap();
    let source = DatasetSource::ImageFolder {
        dir: root.to_owned(),
        size: 8,
    };
    let (train, test) = source.load().unwrap();
    assert_eq!(
        (train.len(), test.len(), train.shape(), train.num_classes()),
        (3, 3, [8, 8, 3], 2)
    );
    // cats < dogs alphabetically: label 0 is cats.
    assert_eq!(train.labels(), [0, 1, 1]);
    assert!(train.pixels()[..192].chunks(3).all(|p| p == [10, 200, 10]));
    // JPEG is lossy: within a few levels.
    let jpeg = &train.pixels()[2 * 192..];
    assert!(
        jpeg.chunks(3)
            .all(|p| p[0].abs_diff(200) <= 4 && p[1].abs_diff(10) <= 4),
        "{:?}",
        &jpeg[..6]
    );
    assert_eq!(source.info().unwrap().classes, 2);

    std::fs::write(root.join("test/cats/c.png"), b"\x89PNG broken").unwrap();
    let message = source.load().unwrap_err().to_string();
    assert!(
        message.contains("c.png") && message.contains("not a decodable PNG or JPEG"),
        "{message}"
    );
    let missing = DatasetSource::ImageFolder {
        dir: root.join("nowhere"),
        size: 8,
    }
    .load()
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("dataset.image_folder") && missing.contains("train"),
        "{missing}"
    );
}

#[test]
fn afhq_has_three_classes_in_train_and_val() {
    use proxyrobust::data::DatasetSource;
    let dir = tempfile::tempdir().unwrap();
    for (split, class, color) in [
        ("train", "cat", 0u8),
        ("train", "dog", 100),
        ("train", "wild", 200),
        ("val", "cat", 0),
        ("val", "dog", 100),
        ("val", "wild", 200),
    ] {
        save_image(
            &dir.path().join(split).join(class).join("x.png"),
            300,
            300,
            [color; 3],
        );
    }
    let (train, test) = DatasetSource::Afhq(dir.path().to_owned()).load().unwrap();
    assert_eq!(
        (train.shape(), train.labels(), test.len()),
        ([224, 224, 3], &[0i64, 1, 2][..], 3)
    );
    assert_eq!(train.pixels()[224 * 224 * 3 + 5], 100);
    std::fs::remove_dir_all(dir.path().join("val/wild")).unwrap();
    let message = DatasetSource::Afhq(dir.path().to_owned())
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("dataset.afhq") && message.contains("val/wild"),
        "{message}"
    );
}

#[test]
fn celeba_labels_are_smile_by_male_and_splits_follow_the_partition_file() {
    use proxyrobust::data::DatasetSource;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Five attributes stand for the forty; the reader finds Smiling and Male by name.
    let rows = [
        ("1.jpg", "1", "1", 0),
        ("2.jpg", "1", "-1", 0),
        ("3.jpg", "-1", "1", 0),
        ("4.jpg", "-1", "-1", 2),
        ("5.jpg", "1", "1", 2),
    ];
    let mut attributes = format!("{}\n5_o_Clock_Shadow Male Bald Smiling Young\n", rows.len());
    let mut partition = String::new();
    for (file, smiling, male, split) in rows {
        save_image(&root.join("img_align_celeba").join(file), 178, 218, [50; 3]);
        attributes += &format!("{file} -1 {male} -1 {smiling} 1\n");
        partition += &format!("{file} {split}\n");
    }
    std::fs::write(root.join("list_attr_celeba.txt"), &attributes).unwrap();
    std::fs::write(root.join("list_eval_partition.txt"), partition).unwrap();
    let (train, test) = DatasetSource::Celeba(root.to_owned()).load().unwrap();
    // smiling male 0, smiling female 1, not-smiling male 2, not-smiling female 3.
    assert_eq!(
        (train.labels(), test.labels()),
        (&[0i64, 1, 2][..], &[3i64, 0][..])
    );
    assert_eq!(train.shape(), [64, 64, 3]);
    std::fs::write(
        root.join("list_attr_celeba.txt"),
        attributes.replace("3.jpg -1 1 -1 -1 1", "3.jpg -1 1 -1 0 1"),
    )
    .unwrap();
    let message = DatasetSource::Celeba(root.to_owned())
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("list_attr_celeba.txt") && message.contains("expected 1 or -1"),
        "{message}"
    );
}

#[test]
fn downsampled_imagenet_npz_is_planar_with_one_based_labels() {
    use proxyrobust::data::folders::read_imagenet_npz;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("val_data.npz");
    // Two 2×2 images, planar R then G then B.
    let data = Array2::from_shape_vec((2, 12), (0..24u8).collect()).unwrap();
    write(&p, |w| {
        w.add_array("data", &data).unwrap();
        w.add_array("labels", &Array1::<i64>::from(vec![1, 1000]))
            .unwrap();
    });
    let set = read_imagenet_npz(&p, 2).unwrap();
    assert_eq!(set.labels(), [0, 999]);
    assert_eq!(&set.pixels()[..6], [0, 4, 8, 1, 5, 9]);
    let bad = dir.path().join("bad.npz");
    write(&bad, |w| {
        w.add_array("data", &Array2::<u8>::zeros((2, 10))).unwrap();
        w.add_array("labels", &Array1::<i64>::from(vec![1, 2]))
            .unwrap();
    });
    let message = read_imagenet_npz(&bad, 2).unwrap_err().to_string();
    assert!(
        message.contains("bad.npz") && message.contains("(N, 12)"),
        "{message}"
    );
}
