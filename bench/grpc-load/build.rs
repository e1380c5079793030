//! Compiles the user-service proto with protox (no protoc). The proto is
//! `GRPC_LOAD_PROTO` when set (bench/services.sh points it at the generated example
//! workspace's copy), else the copy in `proto/`.

use std::{env, error::Error, path::PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed=GRPC_LOAD_PROTO");
    let proto = match env::var_os("GRPC_LOAD_PROTO") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env::var("CARGO_MANIFEST_DIR")?)
            .join("proto/user_service/v1/user_service.proto"),
    };
    println!("cargo:rerun-if-changed={}", proto.display());
    // The include root is the directory that holds `user_service/v1/`.
    let root = proto
        .ancestors()
        .nth(3)
        .ok_or("GRPC_LOAD_PROTO must be .../user_service/v1/user_service.proto")?;
    let mut compiler = protox::Compiler::new([root])?;
    compiler.open_files(["user_service/v1/user_service.proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
