//! `ebm`: sample, inspect and benchmark energy-based models on the GPU or the CPU executor
//! (the commands live in the library's `cli` module, which the Python package also runs).

fn main() -> anyhow::Result<()> {
    ebm_gpu::cli::main()
}
