//! The Sisyphus daemons: `sisyphus scheduler`, … (see the library for the command line).
fn main() -> anyhow::Result<()> {
    sisyphus::main()
}
