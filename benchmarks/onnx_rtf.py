"""The exported ONNX pipeline in onnxruntime against the same model in PyTorch: speed on one thread and greedy WER.

    python benchmarks/onnx_rtf.py --manifest data/speechocean762/dev.jsonl [--model DIR] [--limit 400]

Exports the model (waveform in, log-probs out: `asr export --format onnx`, fp32 and int8) to a temporary folder,
then runs each utterance of the manifest alone (batch 1) through four pipelines on one thread: PyTorch fp32,
PyTorch int8 (`--int8`), onnxruntime fp32 and onnxruntime int8. RTF = network time (features included) / audio
duration, after one warm-up utterance; WER/CER of greedy decoding of each output against the manifest's text, so
that int8's cost in accuracy is measured on the same utterances.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import asr
from asr.audio import load_audio
from asr.decoding import GreedyDecoder, decode
from asr.evaluate import score
from asr.export import export_onnx
from asr.manifest import entry_audio, read_manifest
from asr.model import quantize_int8
from asr.text import normalize

from common import argument_parser, facts_block, run_facts, software, table


def main() -> None:
    parser = argument_parser(__doc__, markdown=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", help="release folder or checkpoint (default: the bundled model)")
    parser.add_argument("--limit", type=int, default=400, help="at most this many utterances")
    args = parser.parse_args()
    import onnxruntime

    torch.set_num_threads(1)
    transcriber = asr.load_model(args.model, runtime="torch")
    features, model = transcriber.network.features, transcriber.network.model
    entries = read_manifest(args.manifest)[: args.limit]
    audios = [load_audio(entry_audio(entry)) for entry in entries]
    references = [normalize(entry["text"]) for entry in entries]
    seconds = sum(len(a) for a in audios) / transcriber.sample_rate
    greedy = GreedyDecoder(transcriber.vocab)

    def torch_run(network: torch.nn.Module):  # noqa: ANN202
        def run(audio: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                waveform = torch.from_numpy(audio)[None]
                return network(*features(waveform, torch.tensor([len(audio)])))[0][0].numpy()
        return run

    def onnx_run(path: Path):  # noqa: ANN202
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda audio: session.run(None, {"waveforms": audio[None], "lengths": np.array([len(audio)])})[0][0]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(features, model, transcriber.vocab, Path(tmp) / "fp32.onnx")
        int8 = export_onnx(features, model, transcriber.vocab, Path(tmp) / "int8.onnx",
                           int8=True)
        runs = [("PyTorch", "fp32", torch_run(model)), ("PyTorch", "int8", torch_run(quantize_int8(model))),
                ("onnxruntime", "fp32", onnx_run(fp32)), ("onnxruntime", "int8", onnx_run(int8))]
        sizes = {"fp32": fp32.stat().st_size / 1e6, "int8": int8.stat().st_size / 1e6}
        for runtime, weights, run in runs:
            run(audios[0])  # warm-up
            began = time.perf_counter()
            outputs = [run(audio) for audio in audios]
            elapsed = time.perf_counter() - began
            report = score(references, [decode(greedy, lp[None], [len(lp)])[0]
                                        for lp in outputs])
            size = f"{sizes[weights]:.1f}" if runtime == "onnxruntime" else ""
            rows.append([runtime, weights, f"{elapsed / seconds:.4f}", f"{report.wer:.2%}", f"{report.cer:.2%}", size])
    facts = [*run_facts(), ("software", software("torch", "onnxruntime")),
             ("audio", f"{len(audios)} utterances of {args.manifest}, {seconds / 60:.1f} min, each alone; 1 thread"),
             ("model", args.model or "the bundled model")]
    print(facts_block(facts, args.markdown))
    print()
    print(table(["runtime", "weights", "RTF", "greedy WER", "greedy CER", "ONNX file (MB)"], rows, "llrrrr",
                args.markdown))


if __name__ == "__main__":
    main()
