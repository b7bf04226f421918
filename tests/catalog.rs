//! Annotation readers and the image check on fixtures in each dataset's exact layout, and the
//! faults: a missing annotation file, a malformed line, a listed image that is missing.

use std::path::Path;

use lifted::Progress;
use lifted::catalog::{self, Catalog, CatalogError, OfficialPart, check_images};
use lifted::manifest::CatalogFormat;

use crate::support::datasets::{self, Fixture, materialize};
use crate::support::images::fixture;
use crate::support::write;

fn on_disk(fixture: &Fixture) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    materialize(fixture, dir.path());
    dir
}

fn read(format: CatalogFormat, root: &Path) -> Result<Catalog, CatalogError> {
    catalog::read(format, "fixture", root)
}

#[test]
fn sop_catalogue_matches_the_annotations() {
    let dir = on_disk(&datasets::sop());
    let root = dir.path().join("Stanford_Online_Products");
    let catalog = read(CatalogFormat::Sop, &root).unwrap();
    assert_eq!(catalog.images.len(), 84);
    assert_eq!(catalog.classes_with_images(), 30);
    let first = &catalog.images[0];
    assert_eq!(first.path, "bicycle_final/111085001000_0.JPG");
    assert_eq!(first.class_id, 1);
    assert_eq!(first.official, Some(OfficialPart::Train));
    assert_eq!(catalog.classes[0].name, "bicycle_final/111085001000");
    let test_images = catalog
        .images
        .iter()
        .filter(|i| i.official == Some(OfficialPart::Test))
        .count();
    assert_eq!(test_images, 48);
    let check = check_images(&catalog, Progress::hidden());
    assert!(check.is_clean(), "{check:?}");
    // The GIFs named .JPG decode like any other image, without a warning.
    for gif in datasets::SOP_GIFS {
        let bytes = std::fs::read(root.join(gif)).unwrap();
        assert!(bytes.starts_with(b"GIF89a"), "{gif} is a GIF");
        let image = lifted::imageio::decode_rgb8(&bytes).unwrap();
        assert_eq!(image.height, 14, "{gif}");
    }
}

#[test]
fn cub_catalogue_matches_the_annotations() {
    let dir = on_disk(&datasets::cub());
    let root = dir.path().join("CUB_200_2011");
    let catalog = read(CatalogFormat::Cub200, &root).unwrap();
    assert_eq!(catalog.images.len(), 16);
    assert_eq!(
        catalog.classes.len(),
        200,
        "every class of classes.txt is known"
    );
    assert_eq!(catalog.classes_with_images(), 8);
    let third = &catalog.images[2];
    assert_eq!(
        third.path,
        "images/002.Laysan_Albatross/Bird_0001_796003.jpg"
    );
    assert_eq!(third.class_id, 2);
    let bbox = third.bbox.unwrap();
    assert_eq!(
        (bbox.x, bbox.y, bbox.width, bbox.height),
        (3.0, 2.0, 10.0, 8.0)
    );
    assert!(
        catalog.notes.iter().any(|n| n.contains("attributes.txt")),
        "{:?}",
        catalog.notes
    );
    let check = check_images(&catalog, Progress::hidden());
    assert!(check.is_clean(), "{check:?}");
    assert_eq!(
        check.unlisted,
        vec!["images/001.Black_footed_Albatross/Bird_0001_796001_rgb.jpg"]
    );
}

#[test]
fn cars_catalogue_matches_the_mat_file() {
    let dir = on_disk(&datasets::cars());
    write(dir.path(), "cars_annos.mat", &datasets::cars_mat());
    let catalog = read(CatalogFormat::Cars196, dir.path()).unwrap();
    assert_eq!(catalog.images.len(), 16);
    assert_eq!(catalog.classes.len(), 196);
    assert_eq!(catalog.classes[0].name, "AM General Hummer SUV 2000");
    assert_eq!(catalog.classes[99].name, "Ram C/V Cargo Van Minivan 2012");
    let classes: Vec<u32> = catalog.images.iter().map(|i| i.class_id).collect();
    assert_eq!(
        classes,
        [
            1, 1, 2, 2, 97, 97, 98, 98, 99, 99, 100, 100, 195, 195, 196, 196
        ]
    );
    assert_eq!(catalog.images[0].path, "car_ims/000001.jpg");
    // MATLAB corners (x1, y1, x2, y2), 1-based inclusive, become 0-based left/top + size.
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(crate::support::images::fixtures().join("cars196/expected.json")).unwrap(),
    )
    .unwrap();
    for (image, row) in catalog
        .images
        .iter()
        .zip(expected["annotations"].as_array().unwrap())
    {
        let n = |k: &str| row[k].as_f64().unwrap() as f32;
        let bbox = image.bbox.unwrap();
        assert_eq!(bbox.x, n("bbox_x1") - 1.0);
        assert_eq!(bbox.y, n("bbox_y1") - 1.0);
        assert_eq!(bbox.width, n("bbox_x2") - n("bbox_x1") + 1.0);
        assert_eq!(bbox.height, n("bbox_y2") - n("bbox_y1") + 1.0);
    }
    assert!(check_images(&catalog, Progress::hidden()).is_clean());
}

#[test]
fn a_missing_annotation_file_is_named() {
    let cases = [
        (
            datasets::sop(),
            CatalogFormat::Sop,
            "Stanford_Online_Products",
            "Ebay_test.txt",
        ),
        (
            datasets::cub(),
            CatalogFormat::Cub200,
            "CUB_200_2011",
            "image_class_labels.txt",
        ),
        (
            datasets::cub(),
            CatalogFormat::Cub200,
            "CUB_200_2011",
            "bounding_boxes.txt",
        ),
    ];
    for (mut fixture, format, root, file) in cases {
        fixture.remove(&format!("{root}/{file}"));
        let dir = on_disk(&fixture);
        let err = read(format, &dir.path().join(root)).unwrap_err();
        match &err {
            CatalogError::MissingFile { path } => assert!(path.ends_with(file), "{path:?}"),
            other => panic!("expected MissingFile for {file}, got {other:?}"),
        }
        assert!(err.to_string().contains("prepare-data again"), "{err}");
    }
    let dir = on_disk(&datasets::cars());
    let err = read(CatalogFormat::Cars196, dir.path()).unwrap_err();
    assert!(
        matches!(&err, CatalogError::MissingFile { path } if path.ends_with("cars_annos.mat")),
        "{err:?}"
    );
}

#[test]
fn a_malformed_line_is_reported_with_its_number() {
    let mut sop = datasets::sop();
    let info = "Stanford_Online_Products/Ebay_info.txt";
    let text = sop
        .text(info)
        .replacen("3 1 1 bicycle_final", "3 1 bicycle_final", 1);
    sop.replace(info, text);
    let dir = on_disk(&sop);
    let err = read(
        CatalogFormat::Sop,
        &dir.path().join("Stanford_Online_Products"),
    )
    .unwrap_err();
    match err {
        CatalogError::Malformed { line, reason, .. } => {
            assert_eq!(line, 4, "header is line 1, image 3 is line 4");
            assert!(reason.contains("expected 4 fields"), "{reason}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }

    let mut cub = datasets::cub();
    let labels = "CUB_200_2011/image_class_labels.txt";
    let text = cub.text(labels).replacen("2 1\n", "2 one\n", 1);
    cub.replace(labels, text);
    let dir = on_disk(&cub);
    let err = read(CatalogFormat::Cub200, &dir.path().join("CUB_200_2011")).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Malformed { line: 2, reason, .. } if reason.contains("class_id must be a positive integer")),
        "{err:?}"
    );
}

#[test]
fn a_missing_sop_header_is_reported() {
    let mut sop = datasets::sop();
    let train = "Stanford_Online_Products/Ebay_train.txt";
    let text: String = sop
        .text(train)
        .lines()
        .skip(1)
        .map(|l| format!("{l}\n"))
        .collect();
    sop.replace(train, text);
    let dir = on_disk(&sop);
    let err = read(
        CatalogFormat::Sop,
        &dir.path().join("Stanford_Online_Products"),
    )
    .unwrap_err();
    assert!(
        matches!(&err, CatalogError::Malformed { line: 1, reason, .. } if reason.contains("header")),
        "{err:?}"
    );
}

#[test]
fn a_cub_label_that_contradicts_the_folder_is_inconsistent() {
    let mut cub = datasets::cub();
    let labels = "CUB_200_2011/image_class_labels.txt";
    let text = cub.text(labels).replacen("1 1\n", "1 2\n", 1);
    cub.replace(labels, text);
    let dir = on_disk(&cub);
    let err = read(CatalogFormat::Cub200, &dir.path().join("CUB_200_2011")).unwrap_err();
    assert!(
        matches!(&err, CatalogError::Inconsistent { reason, .. } if reason.contains("lies in folder")),
        "{err:?}"
    );
}

#[test]
fn missing_and_unreadable_images_are_reported_by_path() {
    let mut sop = datasets::sop();
    sop.remove("Stanford_Online_Products/chair_final/111085003000_0.JPG");
    sop.replace(
        "Stanford_Online_Products/fan_final/111085005000_1.JPG",
        fixture("not_an_image.jpg"),
    );
    let dir = on_disk(&sop);
    let catalog = read(
        CatalogFormat::Sop,
        &dir.path().join("Stanford_Online_Products"),
    )
    .unwrap();
    let check = check_images(&catalog, Progress::hidden());
    assert_eq!(check.missing, vec!["chair_final/111085003000_0.JPG"]);
    assert_eq!(check.unreadable.len(), 1);
    assert_eq!(check.unreadable[0].0, "fan_final/111085005000_1.JPG");
    assert!(!check.is_clean());
}

#[test]
fn every_fixture_kind_decodes_and_a_truncated_jpeg_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "rgb.jpg",
        "gray.jpg",
        "cmyk.jpg",
        "progressive.jpg",
        "truncated.jpg",
        "rgb.png",
        "rgba.png",
        "gray16.png",
    ];
    let mut csv = String::from("path,label\n");
    for name in names {
        write(dir.path(), name, &fixture(name));
        csv.push_str(&format!("{name},{name}\n"));
    }
    let csv_path = write(dir.path(), "list.csv", csv.as_bytes());
    let catalog = catalog::generic::read_csv(&csv_path).unwrap();
    let check = check_images(&catalog, Progress::hidden());
    assert!(
        check.missing.is_empty() && check.duplicates.is_empty(),
        "{check:?}"
    );
    assert_eq!(check.unreadable.len(), 1, "{check:?}");
    let (path, reason) = &check.unreadable[0];
    assert_eq!(path, "truncated.jpg");
    assert!(reason.contains("truncated JPEG"), "{reason}");
}

#[test]
fn image_folder_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("cat", 3), ("dog", 2)] {
        for i in 0..n {
            write(
                dir.path(),
                &format!("{class}/img{i}.jpg"),
                &crate::support::images::jpeg(i),
            );
        }
    }
    write(dir.path(), "dog/notes.txt", b"not an image");
    write(dir.path(), "README.md", b"top-level file");
    let catalog = catalog::generic::read_folder(dir.path()).unwrap();
    let names: Vec<(u32, &str)> = catalog
        .classes
        .iter()
        .map(|c| (c.id, c.name.as_str()))
        .collect();
    assert_eq!(names, [(1, "cat"), (2, "dog")]);
    assert_eq!(catalog.images.len(), 5);
    assert_eq!(catalog.images[3].path, "dog/img0.jpg");
    assert!(
        catalog.notes.iter().any(|n| n.contains("ignored 2 files")),
        "{:?}",
        catalog.notes
    );
}

#[test]
fn csv_catalogue_with_numeric_labels_keeps_them_as_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "list.csv",
        b"path,label,extra\na.jpg,7,x\nb.jpg,3,y\nc.jpg,7,z\n",
    );
    let catalog = catalog::generic::read_csv(&path).unwrap();
    let ids: Vec<u32> = catalog.images.iter().map(|i| i.class_id).collect();
    assert_eq!(ids, [7, 3, 7]);
    assert_eq!(catalog.root, dir.path());
    let bad = write(dir.path(), "bad.csv", b"file,label\na.jpg,1\n");
    let err = catalog::generic::read_csv(&bad).unwrap_err();
    assert!(err.to_string().contains("`path` column"), "{err}");
}

/// Writes the CARS fixture with an altered (uncompressed) MAT-file and reads it.
fn cars_with_mat(edit: impl Fn(&mut Vec<u8>)) -> Result<Catalog, CatalogError> {
    let dir = on_disk(&datasets::cars());
    let mut mat = datasets::uncompressed_mat_fixture();
    edit(&mut mat);
    write(dir.path(), "cars_annos.mat", &mat);
    read(CatalogFormat::Cars196, dir.path())
}

fn replace_once(bytes: &mut [u8], from: &[u8], to: &[u8]) {
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    bytes[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn cars_annotations_that_break_the_format_are_explained() {
    assert_eq!(cars_with_mat(|_| {}).unwrap().images.len(), 16);
    let err = cars_with_mat(|m| replace_once(m, b"class\0", b"clasz\0")).unwrap_err();
    assert!(
        err.to_string().contains("annotations has no field `class`"),
        "{err}"
    );
    let err = cars_with_mat(|m| replace_once(m, b"class_names", b"class_namez")).unwrap_err();
    assert!(
        err.to_string()
            .contains("no variable `class_names` (found: annotations, class_namez)"),
        "{err}"
    );
    // Row 1's class (a small miUINT8 element holding 1) becomes 250, beyond the 196 names.
    let err = cars_with_mat(|m| {
        let class_field = [2u8, 0, 1, 0, 1, 0, 0, 0];
        let first_row_path = b"car_ims/000001.jpg";
        let start = m
            .windows(first_row_path.len())
            .position(|w| w == first_row_path)
            .unwrap();
        let at = start
            + m[start..]
                .windows(8)
                .position(|w| w == class_field)
                .unwrap();
        m[at + 4] = 250;
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("annotations(1).class is 250, not a class number 1-196"),
        "{err}"
    );
}
