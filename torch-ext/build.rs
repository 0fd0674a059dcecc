//! Compiles the C++ shim against the libtorch that torch-sys found (its `libtorch_lib`
//! metadata), with the same C++ standard and ABI flags torch-sys uses for its own wrapper.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys passes the libtorch lib folder as DEP_TCH_LIBTORCH_LIB"),
    );
    let root = lib.parent().expect("libtorch's lib folder has a parent");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .files(["src/shim.cpp", "src/distributed.cpp"]);
    // NCCL's process group needs the CUDA runtime's and NCCL's headers beside torch
    // (site-packages/nvidia/{cu13,nccl}/include) and libtorch_cuda. The CUDA wheels of PyTorch
    // install NCCL's but only part of the CUDA runtime's: crt/ and nv/ come with the
    // nvidia-cuda-crt and nvidia-cuda-cccl wheels, which scripts/ensure-libtorch.sh installs.
    // Without them the build has Gloo only and says so at run time.
    let site = root.parent();
    let cuda_headers = site.map(|s| s.join("nvidia/cu13/include"));
    let nccl_headers = site.map(|s| s.join("nvidia/nccl/include"));
    let nccl = match (&cuda_headers, &nccl_headers) {
        (Some(cuda), Some(nccl)) => {
            cuda.join("cuda_runtime_api.h").exists()
                && cuda.join("crt/host_config.h").exists()
                && cuda.join("nv/target").exists()
                && nccl.join("nccl.h").exists()
                && lib.join("libtorch_cuda.so").exists()
        }
        _ => false,
    };
    if nccl {
        build
            .include(cuda_headers.unwrap())
            .include(nccl_headers.unwrap())
            .define("USE_C10D_NCCL", None)
            .define("USE_CUDA", None)
            .define("PROXYROBUST_NCCL", None);
    }
    build.compile("proxyrobust_torch_ext");
    println!("cargo:rerun-if-changed=src/distributed.cpp");
    println!("cargo:rerun-if-changed=src/shim.h");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // This crate's own test binaries find libtorch without LD_LIBRARY_PATH, as the main crate's do.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if nccl {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
}
