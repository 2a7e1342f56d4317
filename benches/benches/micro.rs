//! Criterion micro-benchmarks of the in-memory paths: append, command handling,
//! aggregate load with and without a snapshot, event codec, upcasting.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tessera_benches::order::{sample_event, AddLine, BenchOrder, BenchOrderEvent};
use tessera_core::{
    CommandHandler, DomainEvent, EventAppender, EventId, ExpectedVersion, MemoryStore, NewEvent,
    SnapshotPolicy, StreamId, Upcasters,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn append_batches(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    let template: Vec<NewEvent> = (0..100).map(sample_event).collect();
    let mut n = 0u64;
    let mut g = c.benchmark_group("memory_append");
    g.throughput(Throughput::Elements(100));
    g.bench_function("100_event_batch", |b| {
        b.iter_batched(
            || {
                n += 1;
                let stream = StreamId::new(format!("batch-{n}")).expect("valid id");
                let events: Vec<NewEvent> = template
                    .iter()
                    .map(|e| e.clone().with_id(EventId::random()))
                    .collect();
                (stream, events)
            },
            |(stream, events)| {
                rt.block_on(store.append(&stream, ExpectedVersion::NoStream, events))
                    .expect("append")
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn commands(c: &mut Criterion) {
    let rt = runtime();
    let handler = CommandHandler::<BenchOrder, _>::new(MemoryStore::new(), ());
    let cmd = AddLine::sample(1);
    let mut n = 0u64;
    let mut g = c.benchmark_group("memory_command");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_event_new_stream", |b| {
        b.iter(|| {
            n += 1;
            let id = n.to_string();
            rt.block_on(handler.handle(&id, &cmd)).expect("command")
        });
    });
    g.finish();
}

fn load(c: &mut Criterion) {
    let rt = runtime();
    let store = MemoryStore::new();
    let plain = CommandHandler::<BenchOrder, _>::new(store.clone(), ());
    let snap = CommandHandler::<BenchOrder, _>::new(store.clone(), ())
        .with_snapshots(store.clone(), SnapshotPolicy::EveryNEvents(100));
    rt.block_on(async {
        let stream = StreamId::new("benchorder-long").expect("valid id");
        let events: Vec<NewEvent> = (0..1000).map(sample_event).collect();
        store
            .append(&stream, ExpectedVersion::NoStream, events)
            .await
            .expect("fill");
        // One command through the snapshotting handler saves a snapshot at 1000.
        snap.handle("long", &AddLine::sample(1))
            .await
            .expect("snapshot");
    });
    let mut g = c.benchmark_group("aggregate_load_1000_events");
    g.bench_function("no_snapshot", |b| {
        b.iter(|| rt.block_on(plain.load("long")).expect("load"));
    });
    g.bench_function("with_snapshot", |b| {
        b.iter(|| rt.block_on(snap.load("long")).expect("load"));
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let event = BenchOrderEvent::LineAdded {
        sku: "SKU-00000001".into(),
        quantity: 2,
        unit_price_cents: 1999,
        total_cents: 3998,
        note: "gift wrap, leave at the front door".into(),
    };
    let (ty, data) = event.encode().expect("encode");
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode", |b| {
        b.iter(|| black_box(&event).encode().expect("encode"))
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            BenchOrderEvent::decode(black_box(ty), black_box(data.as_bytes())).expect("decode")
        });
    });
    let up = Upcasters::new().register("LineAdded", 1, |mut v| {
        v["note"] = serde_json::Value::String(String::new());
        Ok(v)
    });
    let v1 = data.to_value().expect("json");
    g.bench_function("upcast_v1_to_v2", |b| {
        b.iter(|| {
            up.upcast("LineAdded", 1, 2, black_box(v1.clone()))
                .expect("upcast")
        });
    });
    g.finish();
}

criterion_group!(benches, append_batches, commands, load, codec);
criterion_main!(benches);
