"""The model zoo: model cards (``zoo/*.json``), verified and cached downloads, loading by name."""

from keras_arcface.zoo.build import card_from_folder
from keras_arcface.zoo.cards import (
                                    ARTIFACT_FORMATS,
                                    Artifact,
                                    CardError,
                                    ModelCard,
                                    cards_dir,
                                    default_by_rule,
                                    read_cards,
)
from keras_arcface.zoo.download import (
                                    ZooDownloadError,
                                    ZooOfflineError,
                                    cache_root,
                                    clear_cache,
                                    fetch_artifact,
                                    mirror_list,
)
from keras_arcface.zoo.load import default_model, download, list_models, load_backbone, load_model, model_card

__all__ = ["ARTIFACT_FORMATS", "Artifact", "CardError", "ModelCard", "ZooDownloadError", "ZooOfflineError",
           "cache_root", "card_from_folder", "cards_dir", "clear_cache", "default_by_rule", "default_model", "download",
           "fetch_artifact", "list_models", "load_backbone", "load_model", "mirror_list", "model_card", "read_cards"]
