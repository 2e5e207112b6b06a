//! Generates the prost messages and tonic services from proto/cirfed/v1.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/cirfed/v1/records.proto", "proto/cirfed/v1/node.proto", "proto/cirfed/v1/federation.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_prost_build::configure().build_server(true).build_client(true).compile_protos(&protos, &["proto"])?;
    Ok(())
}
