//! Writes the small labeled fixture set (BP4D-like + DISFA-like shards) to
//! the folder given as the first argument: `cargo run --example fixture_set DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fixture_set DIR")?;
    for f in pipeline::fixtures::write_labeled_set(std::path::Path::new(&dir))? {
        println!("{}", f.display());
    }
    Ok(())
}
