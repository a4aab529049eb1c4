"""640x480 frames from a video file through input -> stage -> sink, each in its own process.

The input is an OpenCVConsumer reading a file this benchmark writes; the stage
blurs each frame (a cheap stand-in for a model); the sink decodes and counts.
Runs, in one session against one broker:

- JPEG at quality 80 (``encode_encoding = 'jpg'``), as fast as it goes: ``frames_per_s``;
- the same with the project's raw NumPy codec (msgpack + dtype/shape/bytes);
- JPEG paced at 30 frames/s: ``e2e_p99_ms`` from the source's creation-time header;
- the baseline: the same three steps as plain confluent-kafka + OpenCV loops.

    python -m bench.video [--frames 300] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer

from bench._common import broker, create_topics, emit, fetch_batch, fresh
from fogverse import Consumer, OpenCVConsumer
from fogverse.clients.confluent_conf import producer_conf
from fogverse.config import StageConfig
from fogverse.constants import CT_JPEG, H_CONTENT_TYPE, H_CREATED_AT

SIZE = (640, 480)
QUALITY = 80
WARMUP_FRAMES = 30


def write_video(path: Path, frames: int, fps: float = 30.0) -> Path:
    """A scene with texture and motion, so JPEG has real work (not a flat colour)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SIZE)
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:SIZE[1], 0:SIZE[0]]
    base = np.dstack([x * 255 // SIZE[0], y * 255 // SIZE[1], (x + y) % 256]).astype(np.uint8)
    texture = rng.integers(0, 24, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)
    for i in range(frames):
        img = cv2.add(base, texture)
        cv2.circle(img, (40 + (i * 7) % 560, 240), 40, (255, 255, 255), -1)
        cv2.putText(img, f"frame {i}", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 1, (0, 0, 0), 2)
        writer.write(img)
    writer.release()
    return path


class Source(OpenCVConsumer):
    live = False
    loop_video = True

    def __init__(self, device: Path, rate: float | None, jpeg: bool, **settings: Any) -> None:
        self.device = str(device)
        self.frame_rate = rate
        if jpeg:
            self.encode_encoding = "jpg"
            self.encode_quality = QUALITY
        super().__init__(**settings)


class Blur(Consumer):
    def process(self, frame: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(frame, (5, 5), 0)


class Sink(Consumer):
    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.arrivals: list[float] = []
        self.sizes: list[int] = []

    def decode(self, data: bytes) -> Any:
        self.sizes.append(len(data))
        return super().decode(data)

    def process(self, frame: np.ndarray) -> None:
        assert frame.shape == (SIZE[1], SIZE[0], 3)
        self.arrivals.append(time.monotonic())


def _stage(servers: str, src: str, dst: str, jpeg: bool, ready: Any) -> None:
    stage = Blur(consumer_topic=src, producer_topic=dst, consumer_servers=servers,
                 group_id=fresh("video-stage"), idle_timeout=15, heartbeat=False,
                 batch_size=16)
    if jpeg:
        stage.encode_encoding = "jpg"
        stage.encode_quality = QUALITY
    ready.put("stage")
    asyncio.run(stage.run())


def _sink(servers: str, src: str, count: int, out: Any) -> None:
    sink = Sink(consumer_topic=src, consumer_servers=servers, group_id=fresh("video-sink"),
                max_messages=count, heartbeat=False, batch_size=16)
    out.put("sink")
    asyncio.run(sink.run())
    out.put((sink.arrivals, sink.sizes, list(sink.stats.latency._samples)))


def _source(servers: str, dst: str, video: Path, count: int, jpeg: bool,
            rate: float | None) -> int:
    source = Source(video, rate, jpeg, producer_topic=dst, consumer_servers=servers,
                    max_messages=count, heartbeat=False)
    asyncio.run(source.run())
    return source.stats.produced


# -- the baseline: the same work as plain loops ---------------------------------------------


def _raw_stage(servers: str, src: str, dst: str, count: int, ready: Any) -> None:
    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("raw-stage"),
                              "auto.offset.reset": "earliest", "socket.nagle.disable": True})
    producer = KafkaProducer(producer_conf(StageConfig(consumer_servers=servers), "raw"))
    consumer.subscribe([src])
    ready.put("stage")
    params = [cv2.IMWRITE_JPEG_QUALITY, QUALITY]
    done = 0
    while done < count:
        for msg in fetch_batch(consumer, 16, 0.05):
            if msg.error():
                continue
            frame = cv2.imdecode(np.frombuffer(msg.value(), np.uint8), cv2.IMREAD_COLOR)
            _, jpeg = cv2.imencode(".jpg", cv2.GaussianBlur(frame, (5, 5), 0), params)
            producer.produce(dst, jpeg.tobytes(), headers=msg.headers())
            producer.poll(0)
            done += 1
    producer.flush(10)
    consumer.close()


def _raw_sink(servers: str, src: str, count: int, out: Any) -> None:
    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("raw-sink"),
                              "auto.offset.reset": "earliest", "socket.nagle.disable": True})
    consumer.subscribe([src])
    out.put("sink")
    arrivals: list[float] = []
    sizes: list[int] = []
    latencies: list[float] = []
    while len(arrivals) < count:
        for msg in fetch_batch(consumer, 16, 0.05):
            if msg.error():
                continue
            cv2.imdecode(np.frombuffer(msg.value(), np.uint8), cv2.IMREAD_COLOR)
            created = dict(msg.headers() or [])[H_CREATED_AT]
            latencies.append((time.time_ns() - int(created)) / 1e9)
            sizes.append(len(msg.value()))
            arrivals.append(time.monotonic())
    consumer.close()
    out.put((arrivals, sizes, latencies))


def _raw_source(servers: str, dst: str, video: Path, count: int, jpeg: bool,
                rate: float | None) -> int:
    producer = KafkaProducer(producer_conf(StageConfig(consumer_servers=servers), "raw-src"))
    capture = cv2.VideoCapture(str(video))
    params = [cv2.IMWRITE_JPEG_QUALITY, QUALITY]
    next_at = time.monotonic()
    for _ in range(count):
        ok, frame = capture.read()
        if not ok:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
        _, data = cv2.imencode(".jpg", frame, params)
        producer.produce(dst, data.tobytes(), headers=[
            (H_CONTENT_TYPE, CT_JPEG.encode()), (H_CREATED_AT, str(time.time_ns()).encode())])
        producer.poll(0)
        if rate:
            next_at += 1 / rate
            time.sleep(max(0.0, next_at - time.monotonic()))
    producer.flush(30)
    return count


def run(servers: str, video: Path, count: int, jpeg: bool, rate: float | None,
        raw: bool) -> dict[str, float]:
    a, b = fresh("video-a"), fresh("video-b")
    create_topics(servers, a, b)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    stage_fn, sink_fn, source_fn = ((_raw_stage, _raw_sink, _raw_source) if raw
                                    else (_stage, _sink, _source))
    procs = [ctx.Process(target=stage_fn, args=(servers, a, b, count if raw else jpeg, queue)),
             ctx.Process(target=sink_fn, args=(servers, b, count, queue))]
    for proc in procs:
        proc.start()
    queue.get(timeout=60), queue.get(timeout=60)
    time.sleep(3)  # both consumers join their groups before the frames start
    source_fn(servers, a, video, count, jpeg, rate)
    arrivals, sizes, latencies = queue.get(timeout=300)
    for proc in procs:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    steady = arrivals[WARMUP_FRAMES:]
    fps = (len(steady) - 1) / (steady[-1] - steady[0]) if len(steady) > 1 else 0.0
    lat = sorted(latencies[WARMUP_FRAMES:] or latencies)
    return {
        "frames_per_s": round(fps, 1),
        "bytes_per_frame": round(statistics.mean(sizes)),
        "p50_ms": round(statistics.median(lat) * 1000, 1),
        "p99_ms": round(lat[max(0, int(len(lat) * 0.99) - 1)] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, broker() as servers:
        video = write_video(Path(tmp) / "bench.avi", 150)
        jpeg = run(servers, video, args.frames, jpeg=True, rate=None, raw=False)
        print(f"JPEG q{QUALITY}, full speed:     {jpeg}", flush=True)
        numpy_codec = run(servers, video, args.frames, jpeg=False, rate=None, raw=False)
        print(f"raw NumPy codec, full speed: {numpy_codec}", flush=True)
        paced = run(servers, video, int(30 * args.seconds), jpeg=True, rate=30.0, raw=False)
        print(f"JPEG at 30 frames/s:         {paced}", flush=True)
        base = run(servers, video, args.frames, jpeg=True, rate=None, raw=True)
        print(f"plain loops, JPEG, full speed: {base}", flush=True)
        base_paced = run(servers, video, int(30 * args.seconds), jpeg=True, rate=30.0, raw=True)
        print(f"plain loops, JPEG at 30/s:     {base_paced}", flush=True)
    emit({
        "bench": "video",
        "frames_per_s": jpeg["frames_per_s"],
        "raw_codec_frames_per_s": numpy_codec["frames_per_s"],
        "baseline_frames_per_s": base["frames_per_s"],
        "bytes_per_frame_jpeg": jpeg["bytes_per_frame"],
        "bytes_per_frame_raw": numpy_codec["bytes_per_frame"],
        "compression_ratio": round(numpy_codec["bytes_per_frame"] / jpeg["bytes_per_frame"], 1),
        "e2e_p99_ms": paced["p99_ms"],
        "e2e_p50_ms": paced["p50_ms"],
        "baseline_e2e_p99_ms": base_paced["p99_ms"],
        "target_e2e_p99_ms": 100,
        "target_compression_ratio": 10,
    })


if __name__ == "__main__":
    main()
