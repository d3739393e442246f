//! Prints the JSON Schema of the plugin configuration to standard output.
//!
//! `make schema` writes it to `schema/portcullis.schema.json`:
//!
//! ```sh
//! cargo run -q -p portcullis-core --features schema --example schema > schema/portcullis.schema.json
//! ```

fn main() -> Result<(), serde_json::Error> {
    let schema = portcullis_core::config::json_schema();
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(())
}
