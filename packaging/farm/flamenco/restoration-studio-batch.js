// Flamenco 3 job type: restore a frame sequence with Restoration Studio, one task per chunk of frames.
// Install: copy this file into the `scripts` folder next to flamenco-manager and restart the Manager. Define a
// two-way variable `restoration_studio` in flamenco-manager.yaml pointing at the app on each platform (the
// bundled executable, or a Python interpreter with `exe_args` set to the checkout's main.py).
//
// Each task runs the headless batch command (docs/farm.md):
//   {restoration_studio} batch IN.####.exr -o OUT.####.exr --frames A-B --model ID@sha256:HEX --tile N
//       --device D --skip-existing --progress json
// The model is pinned by sha256 (a node with another file exits 3 instead of mixing results), the tile and the
// device are fixed (every frame the same bytes whichever chunk ran it), and --skip-existing makes a re-queued
// task resume where it stopped (outputs are written atomically).

const JOB_TYPE = {
    label: "Restoration Studio Batch",
    description: "Denoise or restore a frame sequence, one task per chunk of frames",
    settings: [
        { key: "input_pattern", type: "string", subtype: "file_path", required: true,
          description: "Input frames, e.g. /shots/sh010/beauty.####.exr (#### or %04d is the frame number)" },
        { key: "output_pattern", type: "string", subtype: "file_path", required: true,
          description: "Output frames, e.g. /shots/sh010/denoised.####.exr" },
        { key: "frames", type: "string", required: true, description: "Frames, e.g. 1001-1100 or 1-99x2" },
        { key: "chunk_size", type: "int32", default: 10, description: "Frames per task" },
        { key: "model", type: "string", required: true,
          description: "Model id (see `restoration-studio models`)" },
        { key: "model_sha256", type: "string", required: true,
          description: "The model file's sha256 (`restoration-studio models --json`), pinned on every node" },
        { key: "tile", type: "int32", default: 512, description: "Tile edge in pixels (fixed for identical chunks)" },
        { key: "device", type: "string", choices: ["cuda", "cpu"], default: "cuda", description: "Device" },
        { key: "model_settings", type: "string", default: "",
          description: "Model parameters, NAME=VALUE separated by spaces (e.g. noise_level=25)" },
        { key: "exe", type: "string", default: "{restoration_studio}", visible: "hidden",
          description: "The app on the workers (a Flamenco variable)" },
        { key: "exe_args", type: "string", default: "", visible: "hidden",
          description: "Arguments before the command, e.g. the path of main.py for a source checkout" },
    ],
};

function words(text) {
    return (text || "").split(" ").filter((word) => word.length > 0);
}

// The argv of one task (exported for the tests, which run it with a fake `author`).
function taskArguments(settings, chunk) {
    let args = words(settings.exe_args).concat([
        "batch", settings.input_pattern, "-o", settings.output_pattern, "--frames", chunk,
        "--model", `${settings.model}@sha256:${settings.model_sha256}`, "--tile", String(settings.tile),
        "--device", settings.device, "--skip-existing", "--progress", "json",
    ]);
    for (const item of words(settings.model_settings)) {
        args = args.concat(["--set", item]);
    }
    return args;
}

function compileJob(job) {
    const settings = job.settings;
    if (!/^[0-9a-f]{64}$/.test(settings.model_sha256)) {
        throw `model_sha256 must be 64 hexadecimal digits, not "${settings.model_sha256}"`;
    }
    for (const chunk of frameChunker(settings.frames, settings.chunk_size)) {
        const task = author.Task(`restore-${chunk}`, "misc");
        task.addCommand(author.Command("exec", { exe: settings.exe, args: taskArguments(settings, chunk) }));
        job.addTask(task);
    }
}
