"""The model zoo: model cards (``zoo/*.json``), where each file comes from (bundled, installed model packages,
the cache, mirrors), verified and cached downloads, model packages, loading by name."""

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
                                    SOURCES,
                                    Location,
                                    ZooDownloadError,
                                    ZooOfflineError,
                                    cache_root,
                                    clear_cache,
                                    fetch_artifact,
                                    locate,
                                    mirror_list,
)
from keras_arcface.zoo.load import (
                                    RecipeExampleWarning,
                                    default_model,
                                    download,
                                    list_models,
                                    load_backbone,
                                    load_model,
                                    locations,
                                    model_card,
                                    zoo_cards,
)
from keras_arcface.zoo.pack import pack
from keras_arcface.zoo.packages import InstalledModel, distribution_name, installed_models

__all__ = ["ARTIFACT_FORMATS", "SOURCES", "Artifact", "CardError", "InstalledModel", "Location", "ModelCard",
           "RecipeExampleWarning", "ZooDownloadError", "ZooOfflineError", "cache_root", "card_from_folder",
           "cards_dir", "clear_cache", "default_by_rule", "default_model", "distribution_name", "download",
           "fetch_artifact", "installed_models", "list_models", "load_backbone", "load_model", "locate", "locations",
           "mirror_list", "model_card", "pack", "read_cards", "zoo_cards"]
