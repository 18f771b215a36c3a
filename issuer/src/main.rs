//! `latchkey-issuer`: see `latchkey-issuer --help`.

fn main() -> std::process::ExitCode {
    latchkey_issuer::cli::main()
}
