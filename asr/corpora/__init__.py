"""Corpus preparation: everything that turns speech and text on disk into manifests and LM text.

layouts: corpora the user has (LibriSpeech, LJSpeech, Common Voice, folders, CSVs) -> manifest entries.
synthetic: the offline synthetic corpus (sentences from fortunes and WordNet, spoken by every installed TTS voice),
    with neural_tts: the Kokoro and Piper voices it can use.
realspeech: the real-speech dev set read from Debian packages' recordings.
lm_text: the text and vocabulary of the everyday-English language model, from Debian packages' prose.

Nothing below asr.corpora imports it: training and inference read manifests, not corpora.
"""
