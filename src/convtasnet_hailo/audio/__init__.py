"""WAV input/output, resampling and LibriMix reading."""
