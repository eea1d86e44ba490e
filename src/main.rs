//! The `claims-audit` command: argument parsing and one clear line on error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use claims_audit::columns::ColumnMap;
use claims_audit::error::{Error, Result};
use claims_audit::generate::{GenFormat, GenOptions};
use claims_audit::ingest::{Engine, RejectLimit};
use claims_audit::model::Date;
use claims_audit::pipeline::{RunOptions, audit};
use claims_audit::policy::Policy;
use claims_audit::progress::Progress;
use claims_audit::report::{OutputLock, RunInfo, check_out, run_id, write_all};
use claims_audit::rules::RULES;

#[derive(Parser)]
#[command(
    name = "claims-audit",
    version,
    about = "Audits claim extracts for ocrelizumab home-infusion coding and dosing problems",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Audit one or more extracts and write the output directory.
    Run(RunArgs),
    /// List the rule catalogue: id, category, severity, one line.
    Rules {
        /// Show severities and switches of this policy instead of the default.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Check the policy's icd10cm codes and dates against the ICD-10-CM
        /// code set (exit 1 when some disagree).
        #[arg(long)]
        check: bool,
        /// ICD-10-CM release files (folder or file) layered on the code set.
        #[arg(long)]
        codesets: Option<PathBuf>,
    },
    /// ICD-10-CM: `codes CODE [--on DATE]`, `codes --about`, `codes import FILE`.
    Codes(CodesArgs),
    /// Compare two complete output directories by finding id (exit 1 when they differ).
    Diff {
        /// The earlier (or current-policy) output directory.
        old: PathBuf,
        /// The later (or proposed-policy) output directory.
        new: PathBuf,
        /// Write the differing findings here as Parquet, with a `side` column.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print one person's dosing timeline from a finished run.
    Explain {
        /// The run's output directory.
        #[arg(long)]
        out: PathBuf,
        /// The person id, as in the data.
        #[arg(long)]
        person: String,
        /// Write the timeline as one HTML page instead.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Write a synthetic payer-wide extract (for benchmarks and tests).
    Generate(GenArgs),
    /// Copy a CSV extract to typed Parquet (dates as DATE, units as DOUBLE).
    #[command(hide = true)]
    Convert { input: PathBuf, output: PathBuf },
}

#[derive(Args)]
struct RunArgs {
    /// Output directory (replaced atomically; _SUCCESS marks a complete run).
    /// It must be absent, empty, or an earlier claims-audit output, and
    /// neither hold nor lie inside an input.
    #[arg(long)]
    out: PathBuf,
    /// First date of service that gets findings (inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    from: Option<Date>,
    /// Last date of service read and audited (inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    to: Option<Date>,
    /// Days of history before --from that are read and used.
    #[arg(long, default_value_t = 400)]
    lookback_days: u32,
    /// An earlier complete output directory: findings get status new/open and
    /// first_seen, and resolved.parquet lists what this run no longer finds.
    #[arg(long)]
    previous: Option<PathBuf>,
    /// The run date stamped on new and resolved findings (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    run_date: Option<Date>,
    /// Policy file (TOML) replacing the embedded default.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Column map (TOML): canonical name = "header in the extract".
    #[arg(long)]
    columns: Option<PathBuf>,
    /// ICD-10-CM release files (CMS order files, plain or zip; a folder or
    /// one file) layered on the embedded code set.
    #[arg(long)]
    codesets: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Memory for kept rows before they spill to temporary partitions beside
    /// the output (K, M, G suffixes, powers of 1024); `none` never spills.
    #[arg(long, default_value = "128M", value_parser = parse_size)]
    memory_limit: Size,
    /// CSV field delimiter: comma, pipe or tab. Default: each file's own,
    /// the one its header uses most.
    #[arg(long, value_parser = ["comma", "pipe", "tab"])]
    delimiter: Option<String>,
    /// A file whose rejected rows pass this share of its rows (0 to 1) stops
    /// the run (exit 3); 1 lets any file through.
    #[arg(long, default_value_t = 0.05, value_parser = parse_rate)]
    max_reject_rate: f64,
    /// Rejected rows a file may have whatever its rate: the rate applies from
    /// this many rejects up (small files, where one bad row is 10%).
    #[arg(long, default_value_t = RejectLimit::DEFAULT.min_rejects)]
    min_rejects: u64,
    /// No progress output; errors only.
    #[arg(long)]
    quiet: bool,
    /// Readers: fast (default) or plain, the reference readers the fast ones
    /// are tested against (the csv crate for CSV, arrow-rs's record batch reader for
    /// Parquet).
    #[arg(long, alias = "csv-engine", value_enum, default_value_t = Engine::Fast, hide = true)]
    engine: Engine,
    /// Only scan and count in-scope rows; write nothing (benchmark floor).
    #[arg(long, hide = true)]
    scan_only: bool,
    /// Files, directories or globs: .csv, .csv.gz, .parquet, mixed.
    #[arg(required = true)]
    inputs: Vec<String>,
}

#[derive(Args)]
struct CodesArgs {
    /// A code (`G35`, `g35.a`), or `import FILE` to check a release file.
    args: Vec<String>,
    /// The date of service (default: today, UTC).
    #[arg(long, value_parser = parse_date)]
    on: Option<Date>,
    /// Where the code set comes from: releases, source files, checksums.
    #[arg(long)]
    about: bool,
    /// `import`: the release's effective date when the file name does not say.
    #[arg(long, value_parser = parse_date)]
    effective: Option<Date>,
    /// ICD-10-CM release files (folder or file) layered on the code set.
    #[arg(long)]
    codesets: Option<PathBuf>,
    #[arg(long)]
    policy: Option<PathBuf>,
}

#[derive(Args)]
struct GenArgs {
    #[arg(long)]
    lines: u64,
    #[arg(long, default_value_t = 1000)]
    cohort: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = GenFormat::Csv)]
    format: GenFormat,
    /// Every line a policy code (exercises rule evaluation, not the scan).
    #[arg(long)]
    dense: bool,
    #[arg(long)]
    out: PathBuf,
    /// Also write the cohort's pharmacy claims (Tuva pharmacy_claim) here.
    #[arg(long)]
    pharmacy: Option<PathBuf>,
}

/// A byte count, or none.
#[derive(Clone, Copy, Debug)]
struct Size(Option<u64>);

fn parse_size(s: &str) -> std::result::Result<Size, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Size(None));
    }
    let bad = || format!("{s:?} is not a size (for example 512M, 2G, none)");
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = t[digits..].trim().trim_end_matches(['B', 'b']).trim_end_matches(['i', 'I']);
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(1u64 << shift).ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(format!("{s:?}: the memory limit must be at least 1M"));
    }
    Ok(Size(Some(bytes)))
}

/// `YYYY-MM-DD` and nothing else: `11/30/2026` or `01/02/2026` on a
/// command line is ambiguous (OUTPUTS.md "Exit status").
fn parse_date(s: &str) -> std::result::Result<Date, String> {
    Date::parse(s)
        .filter(|d| d.iso_bytes().is_some_and(|b| b == s.as_bytes()))
        .ok_or_else(|| format!("{s:?} is not a date in the form YYYY-MM-DD"))
}

fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("{s:?} is not a rate from 0 to 1 (for example 0.05)")),
    }
}

/// A clap error as one line: its message with the lines that belong to it
/// (the missing arguments, the possible values, a tip), without the usage.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for l in rendered.lines() {
        let l = l.trim();
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !l.is_empty() {
            parts.push(l.trim_start_matches("error: "));
        }
    }
    let line = parts.join(" ").replace(": [", " [").replace(" tip:", "; tip:");
    if line.is_empty() { "invalid arguments".into() } else { line }
}

/// What a command asks the process to exit with, short of an error.
enum Outcome {
    Done,
    /// `diff`: the two runs differ (exit 1, like diff(1)).
    Differ,
}

/// mimalloc: per-thread free lists for the buffers reading churns through
/// on both cores (see Cargo.toml). The library leaves the allocator to its host.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    claims_audit::util::tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `claims-audit` alone: the usage and the commands, as a usage error.
            let _ = e.print();
            return ExitCode::from(2);
        }
        Err(e) if e.use_stderr() => {
            // One line for operators' logs; `--help` shows the rest.
            eprintln!("claims-audit: {} (see --help)", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match dispatch(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Differ) => ExitCode::from(1),
        Err(e) => {
            eprintln!("claims-audit: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn dispatch(cli: Cli) -> Result<Outcome> {
    let done = |r: Result<()>| r.map(|_| Outcome::Done);
    match cli.cmd {
        Cmd::Rules { policy, check, codesets } => {
            let mut policy = load_policy(policy.as_ref())?;
            if let Some(dir) = &codesets {
                policy.add_codesets(dir)?;
            }
            if check {
                let bad = policy.check_codeset();
                let cs = policy.codeset();
                println!(
                    "policy {} {}: {} icd10cm codes checked against the ICD-10-CM code set {} to {}",
                    policy.name(),
                    policy.version(),
                    policy.icd.len(),
                    cs.first_date(),
                    cs.last_date()
                );
                for b in &bad {
                    println!("disagrees: {b}");
                }
                if bad.is_empty() {
                    println!("all agree");
                }
                return Ok(if bad.is_empty() { Outcome::Done } else { Outcome::Differ });
            }
            println!(
                "rule catalogue v{} (policy {} {}, written for catalogue v{})",
                claims_audit::model::CATALOGUE_VERSION,
                policy.name(),
                policy.version(),
                policy.file.policy.catalogue_version
            );
            println!("{:<24} {:<13} {:<8} {:<15} description", "rule_id", "category", "severity", "at_stake");
            for r in RULES {
                let sev = policy.severity(r.id).map_or("disabled", |s| s.as_str());
                println!("{:<24} {:<13} {:<8} {:<15} {}", r.id, r.category, sev, policy.basis(r.id).as_str(), r.summary);
            }
            println!(
                "\nat_stake, the money a finding puts in question: line = the flagged line's payment; dose = the dose's (a pharmacy-supplied dose: its dispense, net of reversals); excess = the share of the line's payment over the daily maximum; smaller_payment = the smaller of the medical and pharmacy payments; none = 0, a clinical signal."
            );
            Ok(Outcome::Done)
        }
        Cmd::Diff { old, new, out } => {
            let differ = claims_audit::report::diff::diff(&old, &new, out.as_deref())?;
            Ok(if differ { Outcome::Differ } else { Outcome::Done })
        }
        Cmd::Explain { out, person, html } => done(claims_audit::report::explain::explain(&out, &person, html.as_deref())),
        Cmd::Generate(g) => done(generate(g)),
        Cmd::Codes(c) => codes(c),
        Cmd::Run(a) => done(run(a)),
        Cmd::Convert { input, output } => {
            claims_audit::report::check_file_out("convert OUTPUT", &output, &[&input])?;
            done(claims_audit::generate::csv_to_parquet(&input, &output))
        }
    }
}

/// `generate`: neither file may be a directory, nor the two be one file.
fn generate(g: GenArgs) -> Result<()> {
    let others: Vec<&std::path::Path> = g.pharmacy.iter().map(|p| p.as_path()).collect();
    claims_audit::report::check_file_out("--out", &g.out, &others)?;
    if let Some(p) = &g.pharmacy {
        claims_audit::report::check_file_out("--pharmacy", p, &[])?;
    }
    claims_audit::generate::generate(&GenOptions {
        lines: g.lines,
        cohort: g.cohort,
        seed: g.seed,
        format: g.format,
        dense: g.dense,
        out: g.out,
        pharmacy: g.pharmacy,
    })
}

fn load_policy(path: Option<&PathBuf>) -> Result<Policy> {
    match path {
        Some(p) => Policy::load(p),
        None => Policy::default_policy(),
    }
}

fn codes(c: CodesArgs) -> Result<Outcome> {
    use claims_audit::codes_cmd;
    let mut policy = load_policy(c.policy.as_ref())?;
    if let Some(dir) = &c.codesets {
        policy.add_codesets(dir)?;
    }
    let cs = policy.codeset();
    let usage = || Error::Config("codes: give a CODE, --about, or import FILE".into());
    match c.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        _ if c.about => print!("{}", codes_cmd::about(cs)),
        ["import", file] => print!("{}", codes_cmd::import(cs, std::path::Path::new(file), c.effective)?),
        ["import", ..] => return Err(Error::Config("codes import: give one release file".into())),
        [] => return Err(usage()),
        ref codes => {
            let on = c.on.unwrap_or_else(today);
            for code in codes {
                print!("{}", codes_cmd::describe_code(cs, code, on));
            }
        }
    }
    Ok(Outcome::Done)
}

fn today() -> Date {
    use chrono::Datelike;
    let t = chrono::Utc::now().date_naive();
    Date::from_ymd(t.year(), t.month(), t.day()).unwrap_or_default()
}

fn run(a: RunArgs) -> Result<()> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CLAIMS_AUDIT_LOG"))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    if let Some(n) = a.threads {
        if n == 0 {
            return Err(Error::Config("--threads must be at least 1".into()));
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
    }
    claims_audit::signals::install();
    // The output may replace only an earlier output: checked before the
    // lock file is made beside it and before anything is read.
    if !a.scan_only {
        check_out(&a.out, &a.inputs)?;
    }
    let mut policy = load_policy(a.policy.as_ref())?;
    if let Some(dir) = &a.codesets {
        policy.add_codesets(dir)?;
    }
    // One run per output directory, from before anything is read to the end.
    let _lock = if a.scan_only { None } else { Some(OutputLock::acquire(&a.out)?) };
    let previous = match &a.previous {
        Some(dir) => Some(claims_audit::report::previous::load_run(dir, "--previous")?),
        None => None,
    };
    let today = chrono::Utc::now().date_naive();
    let run_date = a.run_date.unwrap_or_else(|| {
        use chrono::Datelike;
        Date::from_ymd(today.year(), today.month(), today.day()).unwrap_or_default()
    });
    let columns = match &a.columns {
        Some(p) => ColumnMap::load(p)?,
        None => ColumnMap::default(),
    };
    let opts = RunOptions {
        inputs: a.inputs,
        out: a.out,
        from: a.from,
        to: a.to,
        lookback_days: a.lookback_days.min(100_000) as i32,
        delimiter: a.delimiter.as_deref().map(|d| match d {
            "pipe" => b'|',
            "tab" => b'\t',
            _ => b',',
        }),
        engine: a.engine,
        quiet: a.quiet,
        scan_only: a.scan_only,
        policy_path: a.policy,
        columns_path: a.columns,
        threads: a.threads,
        run_date,
        previous: a.previous,
        memory_limit: a.memory_limit.0,
        reject_limit: RejectLimit { max_rate: a.max_reject_rate, min_rejects: a.min_rejects },
    };
    let progress = Progress::new(opts.quiet);
    let result = audit(&opts, &policy, &columns, &progress, previous.as_ref())?;
    // Even with --quiet: a re-sent extract is the operator's to look at.
    if let Some(w) = duplicate_warning(&result) {
        eprintln!("{w}");
    }
    if opts.scan_only {
        let in_scope: u64 = result.files.iter().map(|f| f.counts.rows_in_scope).sum();
        let read: u64 = result.files.iter().map(|f| f.counts.rows_read).sum();
        println!("rows_read={read} rows_in_scope={in_scope}");
        return Ok(());
    }
    let mut info =
        RunInfo { run_id: run_id(&opts, &policy, &result), started_at, finished_at: String::new(), argv: std::env::args().collect() };
    let bar = progress.bar("write", 4);
    write_all(&opts, &policy, &result, &mut info, &bar)?;
    bar.finish_and_clear();
    if !opts.quiet {
        eprint!("{}", run_summary(&opts, &result));
    }
    Ok(())
}

/// One line when rows repeated rows of an earlier input file (the same
/// extract delivered twice), naming the files that repeated them.
fn duplicate_warning(r: &claims_audit::pipeline::RunResult) -> Option<String> {
    let files: Vec<(String, u64)> =
        r.files.iter().filter(|f| f.counts.rows_duplicate > 0).map(|f| (f.path.clone(), f.counts.rows_duplicate)).collect();
    let total: u64 = files.iter().map(|f| f.1).sum();
    if total == 0 {
        return None;
    }
    let mut named: Vec<String> = files.iter().take(3).map(|(p, n)| format!("{p} ({n})")).collect();
    if files.len() > 3 {
        named.push(format!("and {} more files", files.len() - 3));
    }
    Some(format!(
        "claims-audit: warning: {total} in-scope rows repeat rows of an earlier input file and were read once (the same extract delivered twice?): {}",
        named.join(", ")
    ))
}

/// A few lines on stderr after a run: counts and rule ids, never a person,
/// code or date.
fn run_summary(opts: &RunOptions, r: &claims_audit::pipeline::RunResult) -> String {
    let t = claims_audit::report::totals(r);
    let mut by_sev = [0usize; 3];
    let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &r.findings {
        by_sev[f.severity as usize] += 1;
        *by_rule.entry(f.rule_id).or_default() += 1;
    }
    let mut top: Vec<(&str, usize)> = by_rule.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top.iter().take(3).map(|(r, n)| format!("{r} {n}")).collect();
    let l = &r.lifecycle;
    let since = match &l.previous_run_id {
        Some(_) => format!("; {} new, {} open, {} resolved since the previous run", l.new_count(), l.open_count(), l.resolved.len()),
        None => String::new(),
    };
    let mut s = format!(
        "claims-audit: {} rows read from {} file(s), {} rejected; {} persons, {} administrations in range\n",
        t.counts.rows_read, t.files, t.counts.rows_rejected, t.persons, t.episodes
    );
    s.push_str(&format!(
        "claims-audit: {} findings: {} error, {} warning, {} info{since}\n",
        r.findings.len(),
        by_sev[2],
        by_sev[1],
        by_sev[0]
    ));
    if !top.is_empty() {
        s.push_str(&format!("claims-audit: top rules: {}\n", top.join(", ")));
    }
    s.push_str(&format!("claims-audit: report: {}\n", opts.out.join("report.html").display()));
    s
}
