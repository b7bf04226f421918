//! The decode limit of the loader's benchmark: how many samples of a packed folder one thread
//! decodes per second (libjpeg-turbo, the loader's decoder), with nothing else done.
//!
//!     cargo bench --bench decode_limit -- <packed folder> [rounds]

use std::time::Instant;

use lifted::imageio::jpeg;
use lifted::shard::{Encoding, ShardSet};

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| a != "--bench").collect();
    let dir = args
        .get(1)
        .expect("usage: decode_limit <packed folder> [rounds]");
    let rounds: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(3);
    let set = ShardSet::open(dir.as_ref()).expect("a packed folder");
    assert_eq!(
        set.index().preprocess.encoding,
        Encoding::Jpeg,
        "the decode limit is for JPEG shards"
    );
    let mut buffer = Vec::new();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for i in 0..set.len() {
            let sample = set.sample(i).unwrap();
            jpeg::decode_into(sample.bytes, &mut buffer).unwrap();
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{{\"decode_limit_images_per_s_one_thread\": {:.1}, \"samples\": {}, \"best_of\": {rounds}}}",
        set.len() as f64 / best,
        set.len()
    );
}
