//! Opens a store and prints what opening found and did.
//!
//! ```text
//! cargo run --release --example open_report -- DIR
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).ok_or("usage: open_report DIR")?;
    let store = annals::Store::open(&dir)?;
    println!("{:#?}", store.open_report());
    println!("{:#?}", store.stats());
    Ok(())
}
