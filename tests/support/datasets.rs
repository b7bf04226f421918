//! Fixture copies of SOP, CUB-200-2011 and CARS-196 in their exact published layouts (names,
//! header lines, 1-based ids, nesting, upper-case `.JPG` for SOP), small enough to build in
//! every test, plus manifests that describe them.

use lifted::manifest::{ExpectedCounts, FileKind, Manifest, Source, SourceFile};

use super::archives::{self, Member, Members, file};
use super::images::{fixture, fixtures, jpeg};

/// Counts a fixture is built to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub images: usize,
    pub classes: usize,
    pub train_images: usize,
    pub train_classes: usize,
    pub test_images: usize,
    pub test_classes: usize,
}

/// A dataset fixture: its archive members and its counts.
pub struct Fixture {
    pub members: Members,
    pub counts: Counts,
}

impl Fixture {
    /// Replaces the content of a member (which must exist).
    pub fn replace(&mut self, name: &str, bytes: impl Into<Vec<u8>>) {
        let member = self
            .members
            .iter_mut()
            .find(|(n, _)| n == name)
            .expect("member exists");
        member.1 = Member::File(bytes.into());
    }

    /// Removes a member (which must exist).
    pub fn remove(&mut self, name: &str) {
        let before = self.members.len();
        self.members.retain(|(n, _)| n != name);
        assert_eq!(before, self.members.len() + 1, "member {name} exists");
    }

    /// The text of a member.
    pub fn text(&self, name: &str) -> String {
        match &self
            .members
            .iter()
            .find(|(n, _)| n == name)
            .expect("member exists")
            .1
        {
            Member::File(bytes) => String::from_utf8(bytes.clone()).unwrap(),
            _ => panic!("{name} is not a file"),
        }
    }
}

const SOP_SUPER: [&str; 12] = [
    "bicycle",
    "cabinet",
    "chair",
    "coffee_maker",
    "fan",
    "kettle",
    "lamp",
    "mug",
    "sofa",
    "stapler",
    "table",
    "toaster",
];

/// The GIF files named `.JPG` in SOP, by path (rksltnl/Deep-Metric-Learning-CVPR16 issue 10).
pub const SOP_GIFS: [&str; 6] = [
    "lamp_final/271802113987_2.JPG",
    "lamp_final/221777566426_7.JPG",
    "fan_final/280961317122_7.JPG",
    "fan_final/131546166499_5.JPG",
    "coffee_maker_final/291488772961_1.JPG",
    "bicycle_final/231588927256_1.JPG",
];

/// A small GIF (palette, no transparency) whose colours depend on `seed`.
pub fn gif(seed: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(20 + seed % 5, 14, |x, y| {
        let v = ((x * 11 + y * 7 + seed * 13) % 4) as u8;
        image::Rgba([v * 60, 255 - v * 50, (seed * 40) as u8, 255])
    });
    let mut out = Vec::new();
    let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
    encoder
        .encode_frame(image::Frame::new(img))
        .expect("a GIF encodes");
    drop(encoder);
    out
}

/// `Stanford_Online_Products.zip`'s members: 24 products (classes 1-12 train, 13-24 test) plus
/// 6 products whose second image is one of the GIFs named `.JPG` (classes 25-30, test).
pub fn sop() -> Fixture {
    let root = "Stanford_Online_Products";
    let header = "image_id class_id super_class_id path\n";
    let (mut info, mut train, mut test) =
        (header.to_string(), header.to_string(), header.to_string());
    let mut members: Members = vec![(format!("{root}/"), Member::Dir)];
    let (mut image_id, mut train_id, mut test_id) = (0, 0, 0);
    for class in 1..=24u32 {
        let super_id = (class - 1) % 12 + 1;
        let folder = format!("{}_final", SOP_SUPER[super_id as usize - 1]);
        let listing = 111_085_000_000u64 + u64::from(class) * 1000;
        for n in 0..(2 + class % 3) {
            image_id += 1;
            let path = format!("{folder}/{listing}_{n}.JPG");
            let bytes = if image_id == 5 {
                fixture("cmyk.jpg")
            } else {
                jpeg(image_id)
            };
            members.push(file(&format!("{root}/{path}"), bytes));
            info.push_str(&format!("{image_id} {class} {super_id} {path}\n"));
            // The split files number their own lines; lifted must match images by path.
            if class <= 12 {
                train_id += 1;
                train.push_str(&format!("{train_id} {class} {super_id} {path}\n"));
            } else {
                test_id += 1;
                test.push_str(&format!("{test_id} {class} {super_id} {path}\n"));
            }
        }
    }
    // The six GIFs named `.JPG` that the real zip is reported to hold (rksltnl/
    // Deep-Metric-Learning-CVPR16 issue 10), each the second image of a product of its own
    // (classes 25-30, in the test part), next to a JPEG of the same product.
    for (offset, path) in SOP_GIFS.iter().enumerate() {
        let class = 25 + offset as u32;
        let (folder, name) = path.split_once('/').unwrap();
        let listing = name.split('_').next().unwrap();
        let super_id = SOP_SUPER
            .iter()
            .position(|s| format!("{s}_final") == folder)
            .unwrap()
            + 1;
        let sibling = format!("{folder}/{listing}_0.JPG");
        for (member, bytes) in [(sibling, jpeg(900 + class)), (path.to_string(), gif(class))] {
            image_id += 1;
            test_id += 1;
            members.push(file(&format!("{root}/{member}"), bytes));
            info.push_str(&format!("{image_id} {class} {super_id} {member}\n"));
            test.push_str(&format!("{test_id} {class} {super_id} {member}\n"));
        }
    }
    members.push(file(&format!("{root}/Ebay_info.txt"), info));
    members.push(file(&format!("{root}/Ebay_train.txt"), train));
    members.push(file(&format!("{root}/Ebay_test.txt"), test));
    members.push(file(
        &format!("{root}/Ebay_final.txt"),
        "image_id class_id super_class_id path\n",
    ));
    members.push(file(&format!("{root}/bicycle_final.txt"), "not read\n"));
    members.push(file(&format!("{root}/LICENSE"), "fixture\n"));
    members.push(file(
        &format!("__MACOSX/{root}/._Ebay_info.txt"),
        "resource fork",
    ));
    members.push(file(
        &format!("{root}/bicycle_final/._111085001000_0.JPG"),
        "AppleDouble",
    ));
    Fixture {
        members,
        counts: Counts {
            images: 84,
            classes: 30,
            train_images: 36,
            train_classes: 12,
            test_images: 48,
            test_classes: 18,
        },
    }
}

/// The CUB fixture's classes with images: (id, folder name).
const CUB_CLASSES: [(u32, &str); 8] = [
    (1, "001.Black_footed_Albatross"),
    (2, "002.Laysan_Albatross"),
    (50, "050.Eared_Grebe"),
    (100, "100.Brown_Pelican"),
    (101, "101.White_Pelican"),
    (150, "150.Sage_Thrasher"),
    (199, "199.Winter_Wren"),
    (200, "200.Common_Yellowthroat"),
];

/// `CUB_200_2011.tgz`'s members: 200 classes listed, 8 with two images each.
pub fn cub() -> Fixture {
    let root = "CUB_200_2011";
    let mut members: Members = vec![
        file("attributes.txt", "1 has_bill_shape::curved_(up_or_down)\n"),
        (format!("{root}/"), Member::Dir),
        file(&format!("{root}/README"), "fixture\n"),
    ];
    let name_of = |id: u32| {
        CUB_CLASSES
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(format!("{id:03}.Fixture_Bird"), |(_, n)| n.to_string())
    };
    let classes: String = (1..=200)
        .map(|id| format!("{id} {}\n", name_of(id)))
        .collect();
    let (mut images, mut labels, mut boxes, mut split) =
        (String::new(), String::new(), String::new(), String::new());
    let mut image_id = 0;
    for (class, folder) in CUB_CLASSES {
        for n in 1..=2 {
            image_id += 1;
            let name = format!("{folder}/Bird_{n:04}_{}.jpg", 796_000 + image_id);
            let bytes = if image_id == 3 {
                fixture("gray.jpg")
            } else {
                jpeg(100 + image_id)
            };
            members.push(file(&format!("{root}/images/{name}"), bytes));
            images.push_str(&format!("{image_id} {name}\n"));
            labels.push_str(&format!("{image_id} {class}\n"));
            boxes.push_str(&format!(
                "{image_id} {}.0 2.0 10.0 {}.0\n",
                image_id % 4,
                8 + image_id % 3
            ));
            split.push_str(&format!("{image_id} {}\n", n % 2));
        }
    }
    members.push(file(
        &format!("{root}/images/001.Black_footed_Albatross/Bird_0001_796001_rgb.jpg"),
        jpeg(999),
    ));
    members.push(file(&format!("{root}/classes.txt"), classes));
    members.push(file(&format!("{root}/images.txt"), images));
    members.push(file(&format!("{root}/image_class_labels.txt"), labels));
    members.push(file(&format!("{root}/bounding_boxes.txt"), boxes));
    members.push(file(&format!("{root}/train_test_split.txt"), split));
    members.push(file(&format!("{root}/parts/parts.txt"), "1 back\n"));
    Fixture {
        members,
        counts: Counts {
            images: 16,
            classes: 8,
            train_images: 8,
            train_classes: 4,
            test_images: 8,
            test_classes: 4,
        },
    }
}

/// `car_ims.tgz`'s members, matching `tests/fixtures/cars196/cars_annos_*.mat`.
pub fn cars() -> Fixture {
    let mut members: Members = vec![("car_ims/".to_string(), Member::Dir)];
    for n in 1..=16u32 {
        members.push(file(&format!("car_ims/{n:06}.jpg"), jpeg(200 + n)));
    }
    Fixture {
        members,
        counts: Counts {
            images: 16,
            classes: 8,
            train_images: 8,
            train_classes: 4,
            test_images: 8,
            test_classes: 4,
        },
    }
}

/// The MATLAB-style `cars_annos.mat` fixture (see `tools/fixtures/make_cars_mat.py`).
pub fn cars_mat() -> Vec<u8> {
    std::fs::read(fixtures().join("cars196/cars_annos_matlab_style.mat")).unwrap()
}

/// Packs a fixture the way its dataset is published.
pub fn pack(fixture: &Fixture, kind: FileKind) -> Vec<u8> {
    match kind {
        FileKind::Zip => archives::zip(&fixture.members, false),
        FileKind::TarGz => archives::tar_gz(&fixture.members),
        FileKind::Mat | FileKind::Pth | FileKind::Safetensors => {
            panic!("a {kind:?} file is not an archive")
        }
    }
}

/// The built-in manifest of `dataset`, changed to describe fixture files: each (name, bytes,
/// URLs) gets its exact size and SHA-256, and the counts become the fixture's.
pub fn manifest_for(
    dataset: &str,
    files: &[(&str, &[u8], Vec<String>)],
    counts: Counts,
) -> Manifest {
    let mut manifest = Manifest::built_in(dataset).unwrap();
    for (name, bytes, urls) in files {
        let entry: &mut SourceFile = manifest.files.iter_mut().find(|f| f.name == *name).unwrap();
        let digests = lifted::fetch::digest_bytes(bytes, false);
        entry.size = Some(digests.size);
        entry.sha256 = Some(digests.sha256);
        entry.md5 = None;
        entry.sources = urls
            .iter()
            .map(|url| Source {
                url: url.clone(),
                note: None,
            })
            .collect();
    }
    manifest.expected = ExpectedCounts {
        images: counts.images,
        classes: counts.classes,
    };
    let (train, test) = (
        ExpectedCounts {
            images: counts.train_images,
            classes: counts.train_classes,
        },
        ExpectedCounts {
            images: counts.test_images,
            classes: counts.test_classes,
        },
    );
    match &mut manifest.split {
        lifted::manifest::CanonicalSplit::ClassRange {
            expected_train,
            expected_test,
            ..
        }
        | lifted::manifest::CanonicalSplit::Annotated {
            expected_train,
            expected_test,
        } => {
            *expected_train = train;
            *expected_test = test;
        }
    }
    manifest
}

/// Writes a manifest as TOML to `path`.
pub fn write_manifest(manifest: &Manifest, path: &std::path::Path) {
    std::fs::write(path, toml::to_string(manifest).unwrap()).unwrap();
}

/// Writes a fixture's files straight to disk under `dir` (no archive), for catalogue tests.
pub fn materialize(fixture: &Fixture, dir: &std::path::Path) {
    for (name, member) in &fixture.members {
        let path = dir.join(name);
        match member {
            Member::File(bytes) => {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, bytes).unwrap();
            }
            Member::Dir => std::fs::create_dir_all(&path).unwrap(),
            _ => panic!("fixtures have no links"),
        }
    }
}

/// The devkit layout of the CARS fixture (`tools/fixtures/make_cars_devkit.py`): the same 16
/// images as [`cars`], as `cars_train/` and `cars_test/` with the devkit's annotation files.
/// Returns (file name, bytes) of `cars_train.tgz`, `cars_test.tgz`, `car_devkit.tgz`,
/// `cars_test_annos_withlabels.mat` and `cars_annos.mat`.
pub fn cars_devkit_files() -> Vec<(&'static str, Vec<u8>)> {
    let dir = fixtures().join("cars196/devkit");
    let names: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("names.json")).unwrap()).unwrap();
    let originals = cars();
    let image = |car_ims: &str| match &originals
        .members
        .iter()
        .find(|(n, _)| n == car_ims)
        .unwrap()
        .1
    {
        Member::File(bytes) => bytes.clone(),
        _ => unreachable!("fixture images are files"),
    };
    let part = |folder: &str| -> Vec<u8> {
        let mut members: Members = vec![(format!("{folder}/"), Member::Dir)];
        for (devkit, car_ims) in &names {
            if devkit.starts_with(&format!("{folder}/")) {
                members.push(file(devkit, image(car_ims)));
            }
        }
        archives::tar_gz(&members)
    };
    let mat = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let devkit: Members = vec![
        ("devkit/".to_string(), Member::Dir),
        file("devkit/cars_meta.mat", mat("cars_meta.mat")),
        file("devkit/cars_train_annos.mat", mat("cars_train_annos.mat")),
        file("devkit/README.txt", "fixture devkit\n"),
    ];
    vec![
        ("cars_train.tgz", part("cars_train")),
        ("cars_test.tgz", part("cars_test")),
        ("car_devkit.tgz", archives::tar_gz(&devkit)),
        (
            "cars_test_annos_withlabels.mat",
            mat("cars_test_annos_withlabels.mat"),
        ),
        ("cars_annos.mat", cars_mat()),
    ]
}

/// The built-in CARS manifest with both layouts' files described by fixture bytes and URLs.
pub fn cars_manifest(
    main: &[(&str, &[u8], Vec<String>)],
    devkit: &[(&str, &[u8], Vec<String>)],
) -> Manifest {
    let mut manifest = manifest_for("cars196", main, cars().counts);
    let alternative = manifest
        .alternative
        .as_mut()
        .expect("CARS has a devkit layout");
    for (name, bytes, urls) in devkit {
        let entry = alternative
            .files
            .iter_mut()
            .find(|f| f.name == *name)
            .unwrap();
        let digests = lifted::fetch::digest_bytes(bytes, false);
        entry.size = Some(digests.size);
        entry.sha256 = Some(digests.sha256);
        entry.md5 = None;
        entry.sources = urls
            .iter()
            .map(|url| Source {
                url: url.clone(),
                note: None,
            })
            .collect();
    }
    manifest
}

/// The MATLAB-style fixture with every variable stored uncompressed, so that damage reaches
/// the matrix parser instead of stopping at zlib.
pub fn uncompressed_mat_fixture() -> Vec<u8> {
    let bytes = std::fs::read(
        crate::support::images::fixtures().join("cars196/cars_annos_matlab_style.mat"),
    )
    .unwrap();
    let mut out = bytes[..128].to_vec();
    let mut at = 128;
    while at < bytes.len() {
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        assert_eq!(kind, 15, "every variable of the fixture is compressed");
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&bytes[at + 8..at + 8 + len]),
            &mut inflated,
        )
        .unwrap();
        out.extend_from_slice(&inflated);
        at += 8 + len;
    }
    out
}
