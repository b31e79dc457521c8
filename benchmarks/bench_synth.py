"""Speed of the synthetic city: LiDAR ray casting (rays/s), camera rendering (pixels/s) and whole 15 s logs.

Target: a 15 s log with 32-beam LiDAR in well under a minute on 2 cores. Whole-log results also report the
process's CPU seconds (`extra["cpu_s"]`), which do not depend on what else runs on the machine. Reproduce with
`.venv/bin/python -m benchmarks synth`.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from benchmarks.harness import Result, measure
from scenes.synth.camera import render_camera
from scenes.synth.lidar import simulate_sweep
from scenes.synth.styles import get_style
from scenes.synth.world import EGO_SE3_LIDAR, SynthConfig, simulate_log


def run() -> list[Result]:
    # Compile the numba kernels (cached on disk) outside the timings.
    simulate_log(SynthConfig(seconds=0.1, lidar_azimuth_steps=64, image_width_px=32, image_height_px=32), seed=0)
    probe = simulate_log(SynthConfig(seconds=0.1, cameras=()), seed=0)
    frame = probe.frames[0]
    scene = probe.frame_scene(0)
    lidar = SynthConfig().lidar_model()
    assert lidar is not None
    style = get_style("default")
    network, agents = probe.network, probe.agents
    assert network is not None and agents is not None  # simulate_log keeps the world it simulated
    colors = np.full((agents.num_agents, 3), 0.5)

    def sweep() -> None:
        simulate_sweep(scene, lidar, frame.city_SE3_ego, EGO_SE3_LIDAR, frame.timestamp_ns, np.random.default_rng(0), network.marking)

    def camera() -> None:
        render_camera(scene, "ring_front_center", frame.city_SE3_ego, 320, 192, frame.timestamp_ns, style, np.random.default_rng(0), colors, network.marking)

    def whole_log(name: str, config: SynthConfig, target: str = "") -> Result:
        cpu: list[float] = []

        def simulate() -> None:
            start = time.process_time()
            simulate_log(config, seed=1)
            cpu.append(time.process_time() - start)

        result = measure(name, simulate, items=1, unit="logs/s", repeats=1, warmup=0, target=target)
        return replace(result, extra={"cpu_s": round(cpu[-1], 2), "frames": int(round(config.seconds * config.rate_hz))})

    return [
        measure("LiDAR sweep, 32 beams x 1800 azimuths", sweep, items=lidar.rays_per_sweep, unit="rays/s", repeats=5),
        measure("camera 320x192 (RGB, depth, semantics)", camera, items=320 * 192, unit="pixels/s", repeats=5),
        whole_log("15 s log, 32-beam LiDAR, no camera", SynthConfig(seconds=15.0, cameras=()), "well under 60 s"),
        whole_log("15 s log, 32-beam LiDAR + ring_front_center 320x192", SynthConfig(seconds=15.0), "under 60 s"),
        whole_log("15 s log, agents and annotations only", SynthConfig(seconds=15.0, lidar_beams=None, cameras=())),
    ]
