use clap::Parser;

fn main() -> std::process::ExitCode {
    licensd::cli::Cli::parse().run()
}
