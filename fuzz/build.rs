//! The record messages only: no services, so no tonic.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(false)
        .compile_protos(&["../proto/cirfed/v1/records.proto", "../proto/cirfed/v1/node.proto", "../proto/cirfed/v1/federation.proto"], &["../proto"])?;
    Ok(())
}
