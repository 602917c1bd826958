"""Signal processing shared by the media and RTP layers (resampling), below both."""
