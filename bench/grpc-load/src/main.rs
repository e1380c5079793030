//! grpc-load: `UserService.GetUser` load for a fixed time with N calls in flight.
//!
//!   grpc-load [--url http://127.0.0.1:50051] [--concurrency 32] [--duration 10]
//!             [--warmup 1] [--connections 1] [--threads 1] [--user-id 1]
//!
//! Every worker loops: send one call, wait for its answer, record the latency. Workers
//! share `--connections` HTTP/2 connections round-robin (one by default, as ghz does).
//! Calls made during the warm-up are not counted. `--threads 1` (the default) runs a
//! single-threaded tokio runtime: on a machine whose cores the server under test shares,
//! it costs about half the CPU per call of the multi-threaded one (`--threads 0`: a
//! worker per core; `--threads N`: N workers), which leaves more of the machine to the
//! server.
//! Prints one line, `client_cpu_s` being this process's own CPU time (user + system) while
//! measuring, to see how much of a shared machine the load generator took:
//!   calls=N errors=N seconds=S rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D client_cpu_s=E

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use tonic::transport::{Channel, Endpoint};

pub mod pb {
    tonic::include_proto!("user_service.v1");
}

use pb::{GetUserRequest, user_service_client::UserServiceClient};

struct Args {
    url: String,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    connections: usize,
    threads: usize,
    user_id: i64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: "http://127.0.0.1:50051".to_owned(),
        concurrency: 32,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
        connections: 1,
        threads: 1,
        user_id: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let secs = |v: String| {
            v.parse::<f64>()
                .map(Duration::from_secs_f64)
                .map_err(|e| format!("{flag}: {e}"))
        };
        match flag.as_str() {
            "--url" => args.url = value()?,
            "--concurrency" | "-c" => {
                args.concurrency = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
            }
            "--duration" | "-d" => args.duration = secs(value()?)?,
            "--warmup" => args.warmup = secs(value()?)?,
            "--connections" => {
                args.connections = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
            }
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("{flag}: {e}"))?;
            }
            "--user-id" => args.user_id = value()?.parse().map_err(|e| format!("{flag}: {e}"))?,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if args.concurrency == 0 || args.connections == 0 {
        return Err("--concurrency and --connections must be at least 1".to_owned());
    }
    Ok(args)
}

/// What one worker saw: latencies in microseconds of successful calls, and errors.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    mut client: UserServiceClient<Channel>,
    user_id: i64,
    count_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally {
        latencies_us: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    loop {
        let start = Instant::now();
        if start >= end {
            return tally;
        }
        let reply = client.get_user(GetUserRequest { user_id }).await;
        let done = Instant::now();
        if start < count_from {
            continue;
        }
        match reply {
            Ok(_) => tally
                .latencies_us
                .push(u32::try_from((done - start).as_micros()).unwrap_or(u32::MAX)),
            Err(status) => {
                tally.errors += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
            }
        }
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// CPU time (user + system) this process has used so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15 (clock ticks,
    // 100 per second on Linux).
    let Some(rest) = stat.rsplit_once(") ").map(|(_, rest)| rest) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: grpc-load [--url URL] [--concurrency N] [--duration SECS] [--warmup SECS] [--connections N] [--threads N] [--user-id ID]"
            );
            return ExitCode::from(2);
        }
    };
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if args.threads > 1 {
            builder.worker_threads(args.threads);
        }
        builder.enable_all().build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let mut channels = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let endpoint = match Endpoint::from_shared(args.url.clone()) {
            Ok(e) => e.tcp_nodelay(true),
            Err(e) => {
                eprintln!("error: invalid --url: {e}");
                return ExitCode::from(2);
            }
        };
        match endpoint.connect().await {
            Ok(channel) => channels.push(channel),
            Err(e) => {
                eprintln!("error: cannot connect to {}: {e}", args.url);
                return ExitCode::FAILURE;
            }
        }
    }

    let begin = Instant::now();
    let count_from = begin + args.warmup;
    let end = count_from + args.duration;
    // Sampled when the warm-up ends, by a task of its own.
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(count_from.into()).await;
        cpu_seconds()
    });
    let workers: Vec<_> = (0..args.concurrency)
        .map(|i| {
            let client = UserServiceClient::new(channels[i % channels.len()].clone());
            tokio::spawn(worker(client, args.user_id, count_from, end))
        })
        .collect();

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for handle in workers {
        let tally = handle.await.expect("a worker panicked");
        latencies.extend(tally.latencies_us);
        errors += tally.errors;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    let client_cpu = cpu_seconds() - cpu_at_start.await.unwrap_or(f64::NAN);
    latencies.sort_unstable();
    let seconds = args.duration.as_secs_f64();
    println!(
        "calls={} errors={} seconds={:.1} rps={:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} client_cpu_s={:.2}",
        latencies.len(),
        errors,
        seconds,
        latencies.len() as f64 / seconds,
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0),
        client_cpu,
    );
    if let Some(error) = first_error {
        eprintln!("first error: {error}");
    }
    if latencies.is_empty() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
