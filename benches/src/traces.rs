//! `tessera-bench --trace-export`: spans exported over OTLP as a deployed service
//! exports them, to measure what tracing costs against a run without it.
//!
//! Installs a `tracing` subscriber with only the OpenTelemetry layer (no log output)
//! whose batch processor sends OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` when set,
//! else to a sink in this process that reads each export request and answers 200 (a
//! collector's receive path without its processing). Every command's span is sampled.
//! The layer leaves out the source location, thread and busy/idle attributes, as the
//! shop's does; `TESSERA_BENCH_OTEL_DEFAULTS=1` keeps the layer's defaults, to compare.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The installed exporter: shut it down at the end so the last spans go out.
pub struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Sends what is left and stops the exporter (outside the workload's runtime).
    pub fn finish(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("tessera-bench: the trace exporter did not shut down cleanly: {e}");
        }
    }
}

/// Starts the sink (unless an endpoint is set) and installs the layer. Call it before
/// the runtime that runs the workload (the exporter's blocking client has a runtime of
/// its own): the sink gets a thread and runtime of its own too.
pub fn install() -> Result<Export, String> {
    use opentelemetry_otlp::WithExportConfig;
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("otlp-sink".into())
            .spawn(move || sink(listener))
            .map_err(|e| e.to_string())?;
        builder = builder.with_endpoint(format!("http://{addr}/v1/traces"));
    }
    let exporter = builder.build().map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("tessera-bench")
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    // As the shop's (examples/shop/src/traces.rs): no location, thread or busy/idle
    // attributes.
    let lean = std::env::var_os("TESSERA_BENCH_OTEL_DEFAULTS").is_none();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tessera-bench"))
        .with_location(!lean)
        .with_threads(!lean)
        .with_tracked_inactivity(!lean)
        .with_filter(LevelFilter::INFO);
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Export { provider })
}

/// `tessera-bench otlp-sink`: the sink on `listen`, in this thread, until killed.
pub fn serve_sink(listen: &str) -> Result<(), String> {
    let listener = std::net::TcpListener::bind(listen).map_err(|e| format!("{listen}: {e}"))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    eprintln!("tessera-bench: OTLP/HTTP sink on http://{listen}");
    sink(listener);
    Ok(())
}

/// Answers every OTLP/HTTP request on `listener` with 200 and an empty body.
fn sink(listener: std::net::TcpListener) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(connection(socket));
        }
    });
}

async fn connection(socket: tokio::net::TcpStream) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if reader.get_mut().write_all(answer).await.is_err() {
            return;
        }
    }
}
