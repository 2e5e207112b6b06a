//! Generates the prost messages and tonic services from proto/cirfed/v1, and
//! the file descriptor set that server reflection serves.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/cirfed/v1/records.proto", "proto/cirfed/v1/node.proto", "proto/cirfed/v1/federation.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("cirfed_descriptor.bin");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(descriptors)
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}
