//! The Sisyphus command line (see the `sisyctl` library).
fn main() -> std::process::ExitCode {
    sisyctl::main()
}
