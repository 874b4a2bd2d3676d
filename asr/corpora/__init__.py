"""Corpus preparation: the formats any user's corpus comes in, turned into manifests, and the synthetic corpus.
Readers that only one recipe uses live in that recipe (recipes/<corpus>/).

layouts: corpora the user has (LibriSpeech, LJSpeech, Common Voice, folders, CSVs) -> manifest entries.
synthetic: the offline synthetic corpus (sentences from fortunes and WordNet, spoken by every installed TTS voice),
    with neural_tts: the Kokoro and Piper voices it can use.
kaldi: Kaldi data directories -> manifest entries.

Nothing below asr.corpora imports it: training and inference read manifests, not corpora.
"""
