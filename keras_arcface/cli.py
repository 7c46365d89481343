"""The ``keras-arcface`` command: one thin function per subcommand."""

import argparse
import os
import pathlib
import sys

#: An example value for each JSON flag, shown when the given text does not parse.
JSON_EXAMPLES = {"--head-params": '{"margin": 0.4}', "--backbone-params": '{"width": 0.5}',
                 "--input-spec": '{"layout": "NCHW", "mean": 127.5, "std": 127.5}'}
GALLERY_HELP = ("a gallery from `keras-arcface index`: a file (.npz), a Milvus Lite folder (.db) or "
                "milvus://HOST:PORT/COLLECTION")


def _json_object(flag, text):
    """The JSON object a flag holds; a one-line error names the flag, the text and an example."""
    import json

    from keras_arcface.errors import InputError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{flag} is not valid JSON ({error.msg}, column {error.colno}): {text!r}; write it like "
                         f"'{JSON_EXAMPLES[flag]}' (double-quoted names)") from None
    if not isinstance(value, dict):
        raise InputError(f"{flag} must be a JSON object like '{JSON_EXAMPLES[flag]}', got {text!r}")
    return value


def _zoo_options(args):
    return {key: value for key, value in (("urls", getattr(args, "url", None)),
                                          ("cache_dir", getattr(args, "cache_dir", None))) if value}


def _demo(args):
    from keras_arcface.demo import run_demo

    result = run_demo(model=args.model, pairs=args.pairs, images=args.images, **_zoo_options(args))
    return 0 if result["decisions_agree"] else 1


def _demo_heads(args):
    from keras_arcface.heads_demo import DEFAULT_HEADS, run_demo

    run_demo(heads=args.heads or DEFAULT_HEADS, epochs=args.epochs, seed=args.seed)
    return 0


def _zoo(args):
    import json

    from keras_arcface.zoo import download, list_models, locations, model_card, pack

    if args.zoo_command == "list":
        names = [name for name in list_models(include_examples=args.all)
                 if model_card(name).commercial_use or not args.commercial]
        if not names:
            print("no zoo model states licences that allow commercial use")
        for name in names:
            _print_zoo_entry(model_card(name), locations(name, **_zoo_options(args)))
    elif args.zoo_command == "info":
        print(json.dumps(model_card(args.name).to_dict(), indent=1))
    elif args.zoo_command == "pack":
        for name in args.names:
            print(pack(name, args.output, formats=args.format, **_zoo_options(args)))
    else:
        formats = args.format or list(model_card(args.name).artifacts)
        for fmt in formats:
            print(download(args.name, fmt, **_zoo_options(args)))
    return 0


def _print_zoo_entry(card, where):
    """One model of ``zoo list``: what it is, its licences, and where each of its files comes from now."""
    data = card.licence["training_data"]
    data = "; ".join(data.values()) if isinstance(data, dict) else data
    origin = "converted, not trained here" if card.origin else "trained here"
    example = "  (training-recipe example: below the quality bar)" if card.recipe_example else ""
    print(f"{card.name}{'  (default)' if card.default else ''}{example}\n  {card.summary}\n  {card.backbone}, "
          f"{card.embedding_size}-d, {card.lfw_summary()} ({origin}); version {card.version}\n"
          f"  weights licence: {card.licence['weights']}\n  training data: {data}\n"
          f"  commercial use: {'allowed by the stated licences' if card.commercial_use else 'no'}\n"
          + (f"  verdict threshold: {card.operating_point_summary()}\n" if card.operating_point else "")
          + "  files, and where each comes from now:")
    runtime = card.runtime_format()
    for fmt, location in where.items():
        size = f"{card.artifact(fmt).size / 1e6:.1f} MB"
        print(f"    {fmt:<20} {size:>8}  {location.source}: {location.detail}"
              f"{'  (used by default)' if fmt == runtime else ''}")
    missing = [fmt for fmt, location in where.items() if location.source == "not available"]
    if missing:
        from keras_arcface.zoo.download import availability_hints
        from keras_arcface.zoo.packages import installed_models

        hint, _ = availability_hints(card.name, [card.artifact(fmt) for fmt in missing],
                                     installed_models().get(card.name))
        print(f"    to get what is not available: {hint}")


def _config_from_args(args):
    """The :class:`TrainConfig` of the train / lr-find flags (generated from its fields)."""
    import dataclasses
    import importlib

    from keras_arcface.training import TrainConfig

    values = {}
    for field in dataclasses.fields(TrainConfig):
        if field.metadata.get("flag") is False or getattr(args, field.name, None) is None:
            continue
        value = getattr(args, field.name)
        if field.metadata.get("read"):
            module, _, function = field.metadata["read"].partition(":")
            value = getattr(importlib.import_module(module), function)(value)
        elif field.type is dict:
            value = _json_object(_flag_of(field), value)
        values[field.name] = value
    return TrainConfig(**values)


def _flag_of(field):
    return field.metadata.get("flag") or "--" + field.name.replace("_", "-")


def add_config_arguments(command, config_class):
    """One flag per field of ``config_class`` (a dataclass built with ``training.config._option``): the
    field's type, help and choices; its default shown but not restated (an unset flag leaves the field at
    the dataclass's default).  A True boolean gets ``--no-NAME``."""
    import dataclasses

    for field in dataclasses.fields(config_class):
        flag, meta = _flag_of(field), field.metadata
        if meta.get("flag") is False:
            continue
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        default = None if required or field.default is dataclasses.MISSING else field.default
        options = {"dest": field.name, "default": None, "help": meta.get("help", "")}
        if field.type is bool:
            flag = flag if not default else "--no-" + flag[2:]
            command.add_argument(flag, action="store_false" if default else "store_true", **options)
            continue
        if default not in (None, "", [], {}):
            options["help"] += f" (default: {default})"
        if meta.get("choices"):
            module, _, name = meta["choices"].partition(":")
            options.update(choices=_RegistryNames(module, name), metavar="NAME")
        if field.type is list:
            options["nargs"] = "+"
        elif field.type in (int, float):
            options["type"] = field.type
        command.add_argument(flag, required=required, **options)


def _train(args):
    from keras_arcface.training import TrainingDivergedError, train

    config = _config_from_args(args)
    try:
        result = train(config)
    except TrainingDivergedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    losses = result.history.get("loss", [])
    print(f"trained {config.backbone} + {config.head} on {result.num_images} images of "
          f"{result.num_classes} identities: {result.epochs_run} epoch(s) this run"
          + (f", final loss {losses[-1]:.4f}, {result.samples_per_second:.1f} samples/s" if result.epochs_run else
             " (already complete: no file changed)") + f"; outputs in {result.output_dir}")
    return 0


def _lr_find(args):
    import json

    from keras_arcface.files import write_text_atomically
    from keras_arcface.training.lock import run_folder_lock
    from keras_arcface.training.lr_range import lr_range_test, plot_range_test

    config = _config_from_args(args)
    output = pathlib.Path(config.output_dir)
    with run_folder_lock(output, "lr-find"):  # not into a folder a live run trains into
        result = lr_range_test(config, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps, verbose="auto")
        write_text_atomically(output / "lr_range.json", json.dumps(result.to_dict(), indent=1))
        plotted = plot_range_test(result, output / "lr_range.png")
    print(f"learning-rate range test, {len(result.losses)} steps from {args.min_lr:g} to "
          f"{result.learning_rates[-1]:.4g}{' (stopped: diverged)' if result.diverged else ''}: "
          f"steepest descent at lr {result.steepest:.4g}, minimum loss at lr {result.minimum:.4g}, "
          f"suggested lr {result.suggested:.4g}; {output / 'lr_range.json'}"
          + (f", {output / 'lr_range.png'}" if plotted else ""))
    return 0


def _default_operating_point():
    """The default model's operating point in words, for --help (empty when its card cannot be read)."""
    from keras_arcface.errors import InputError

    try:
        from keras_arcface.zoo import default_model, model_card

        return model_card(default_model()).operating_point_summary() or "not measured"
    except InputError:
        return "its card could not be read"


def _input_spec(args):
    import dataclasses

    from keras_arcface.errors import InputError
    from keras_arcface.runtime import InputSpec

    if not getattr(args, "input_spec", None):
        return None
    values = _json_object("--input-spec", args.input_spec)
    known = [field.name for field in dataclasses.fields(InputSpec)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise InputError(f"--input-spec has no field {', '.join(map(repr, unknown))}; its fields: {', '.join(known)}")
    return InputSpec(**values)


def _load_embedder(args):
    from keras_arcface.embedding import load_embedder

    return load_embedder(args.model, spec=_input_spec(args), **_zoo_options(args))


def _eval(args):
    from keras_arcface.embedding import zoo_reference
    from keras_arcface.errors import InputError
    from keras_arcface.evaluation import evaluate_pairs, format_report
    from keras_arcface.evaluation.evaluate import save_report

    if args.save_threshold and (args.model is None or zoo_reference(args.model)):
        raise InputError("--save-threshold stores the threshold beside a model file or folder; a zoo model "
                         "carries its card's thresholds (pass --model PATH)")
    embedder = _load_embedder(args)
    if args.calibration_pairs:
        from keras_arcface.evaluation import evaluate_calibrated

        report = evaluate_calibrated(embedder, args.calibration_pairs, args.pairs, args.images, flip=args.flip)
        print(f"threshold {report['threshold']:.4f} from {report['calibration_pairs']} calibration pairs "
              f"(accuracy there {report['calibration_accuracy'] * 100:.2f} %)\n"
              f"accuracy on {report['test_pairs']} test pairs: {report['accuracy'] * 100:.2f} %, "
              f"AUC {report['auc']:.5f}")
        if args.json:
            save_report(report, args.json)
        return 0
    report = evaluate_pairs(embedder, args.pairs, args.images, flip=args.flip, roc_path=args.roc, folds=args.folds,
                            limit=args.limit)
    print(format_report(report))
    if args.json:
        save_report(report, args.json)
    if args.roc:
        print(f"ROC curve: {args.roc}")
    if args.save_threshold:
        from keras_arcface.evaluation.models import save_threshold

        print(f"calibrated threshold {report['best_threshold']:.4f} saved to "
              f"{save_threshold(args.model, report['best_threshold'], report, embedder.spec)}")
    return 0


def _verifier(args):
    from keras_arcface.verification import FaceVerifier

    return FaceVerifier(args.model, detector=args.detector, threshold=getattr(args, "threshold", None),
                        far=getattr(args, "far", None), choose=args.choose, spec=_input_spec(args),
                        rotate=args.rotate, min_quality=getattr(args, "min_quality", None), **_zoo_options(args))


def _verify(args):
    import json

    verifier = _verifier(args)
    result = verifier.verify(args.image_a, args.image_b, face_a=args.face_a, face_b=args.face_b,
                             any_face=args.any_face)
    for face in result.faces:
        if face.choice_note():
            print(f"note: {face.choice_note()}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        for label, face in zip(("image A", "image B"), result.faces):
            print(f"{label} {face.describe()}")
        print(f"similarity {result.similarity:.4f} (cosine, model {result.model})")
        if result.threshold is not None:
            print(f"threshold  {result.threshold:.4f} ({result.threshold_source})")
            print(f"verdict    {'same person' if result.same else 'different people'}")
    if result.threshold is None:
        print("error: no calibrated threshold for this model: pass --threshold, or calibrate one with "
              "`keras-arcface eval --save-threshold`", file=sys.stderr)
        return 2
    return 0 if result.same else 1


def _index(args):
    from keras_arcface.gallery import enrol, gallery_file, is_database

    skipped, notes = [], []
    index, added, held = enrol(args.output, args.folder, _verifier(args), rebuild=args.rebuild,
                               on_skip=lambda path, reason: skipped.append(f"{path}: {reason}"),
                               on_note=lambda path, what: notes.append(f"{path}: {what}"))
    with index:
        where = args.output if is_database(args.output) else gallery_file(args.output)
        print(f"{added} faces added ({held} photos already in the gallery); it holds {len(index)} faces of "
              f"{len(index.people())} people (model {index.model}) -> {where}")
    if notes:
        print(f"note: {len(notes)} photo(s) enrolled with several faces or low quality "
              "(--min-quality refuses faces below a score):", *notes, sep="\n  ", file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} file(s):", *skipped, sep="\n  ", file=sys.stderr)
    return 0


def _gallery(args):
    import json

    from keras_arcface.gallery import copy_gallery, gallery_lock, open_gallery

    if args.gallery_command == "copy":
        with gallery_lock(args.destination), copy_gallery(args.gallery, args.destination) as copied:
            print(f"{len(copied)} faces of {len(copied.people())} people -> {args.destination}")
        return 0
    if args.gallery_command in ("list", "stats"):
        with open_gallery(args.gallery) as index:
            if args.gallery_command == "stats":
                print(json.dumps(index.stats(), indent=1))
            else:
                rows = (((entry["identity"], entry["file"]) for entry in index.entries()) if args.files
                        else index.people().items())
                for name, value in rows:
                    print(f"{name}\t{value}")
        return 0
    # the same lock as enrolment: no change is lost
    with gallery_lock(args.gallery), open_gallery(args.gallery) as index:
        if args.gallery_command == "remove":
            removed = index.remove(identity=args.identity, file=args.file)
            what = f"identity {args.identity}" if args.identity else f"file {args.file}"
            print(f"removed {removed} face(s) of {what}; {len(index)} faces of {len(index.people())} people remain")
        else:
            index.rename(args.identity, args.new_name)
            print(f"{args.identity} -> {args.new_name}: {index.people()[args.new_name.strip()]} faces")
        index.commit()
    return 0


def _identify(args):
    from keras_arcface.gallery import open_gallery

    with open_gallery(args.gallery, backend=args.backend) as index:
        return _identified(args, index)


def _identified(args, index):
    import json

    if args.model is not None and args.model != index.model:
        print(f"warning: the gallery was built with {index.model}, the query uses {args.model}", file=sys.stderr)
    args.model = args.model or index.model or None
    verifier = _verifier(args)
    given = args.threshold is not None or args.far is not None
    threshold = verifier.threshold if given else index.threshold
    source = verifier.threshold_source if given else index.threshold_source
    results = index.identify_faces(args.photo, args.top_k, verifier, face=args.face)
    report = index.identification(results, args.photo, threshold, source, str(verifier.embedder.reference))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"threshold {threshold:.4f} ({source})")
        for (face, matches), person in zip(results, report["faces"]):
            print(f"photo {face.describe()}")
            if matches is None:
                print(f"  not searched: quality below --min-quality {args.min_quality:g}")
                continue
            best = matches[0]
            print(f"  identity: {person['identity']}" + (
                f" (best match {best.identity} at {best.similarity:.4f}, below the threshold {threshold:.4f})"
                if person["identity"] == "unknown" else ""))
            for rank, match in enumerate(person["matches"], 1):
                print(f"    {rank}. {match['identity']:<30} {match['similarity']:.4f}"
                      f"{'' if match['above_threshold'] else '  (below threshold)'}  {match['file']}")
    return 0 if report["identities"] else 1


def _serve(args):
    import dataclasses
    import importlib.util

    from keras_arcface.embedding import check_model_name
    from keras_arcface.errors import InputError
    from keras_arcface.service.settings import ServiceSettings, api_keys, serve

    for module in ("fastapi", "uvicorn", "multipart", "PIL"):
        if importlib.util.find_spec(module) is None:
            raise InputError(f"keras-arcface serve needs the serve extra ({module} is missing): "
                             "pip install 'keras-arcface[serve]'")
    check_model_name(args.model)  # here, once, rather than in every worker after it started
    fields = {field.name for field in dataclasses.fields(ServiceSettings)}
    settings = ServiceSettings(**{name: value for name, value in vars(args).items() if name in fields})
    keys = api_keys(settings)
    where = f"http://{settings.host}:{settings.port}"
    guarded = "writes and reads" if settings.protect_reads else "writes"
    access = f"{len(keys)} API key(s): {guarded} need one" if keys else "no API key: read-only (enroll and delete " \
        "answer 403)"
    print(f"keras-arcface serve: {where} (OpenAPI page {where}/docs), {settings.workers} worker(s), gallery "
          f"{settings.gallery or 'none'}; {access}", file=sys.stderr, flush=True)
    if not settings.is_loopback() and not settings.protect_reads:
        print(f"warning: listening on {settings.host} with open reads: anyone who reaches it can verify and identify "
              "(--protect-reads asks them for a key)", file=sys.stderr)
    serve(settings)
    return 0


def _cluster(args):
    from keras_arcface.clustering import update_clusters
    from keras_arcface.data.images import IMAGE_EXTENSIONS
    from keras_arcface.errors import InputError

    photos = []
    for given in args.photos:
        path = pathlib.Path(given)
        if path.is_dir():
            photos += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        else:
            photos.append(path)
    names = {}
    for entry in args.name or []:
        cluster, _, name = entry.partition("=")
        if not cluster.strip().isdigit() or not name.strip():
            raise InputError(f"--name takes ID=NAME, e.g. --name 3=Alice, got {entry!r}")
        names[int(cluster)] = name
    skipped = []
    clusters = update_clusters(args.output, photos, _verifier(args) if photos else None, names,
                               on_skip=lambda path, reason: skipped.append(f"{path}: {reason}"), far=args.far,
                               threshold=args.threshold, min_size=args.min_size, method=args.method)
    ids = clusters.cluster_ids
    loose = int((clusters.labels < 0).sum())
    source = clusters.threshold_source.split(" (")[0]  # "FAR 1e-3 on LFW", without the protocol
    print(f"{len(clusters.faces)} faces: {len(ids)} clusters of {args.min_size}+ faces, {loose} unclustered "
          f"(model {clusters.model}, threshold {clusters.threshold:.4f}: {source}) -> {args.output}")
    for summary in sorted((clusters.summary(c) for c in ids), key=lambda s: -s["size"])[:10]:
        face = summary["representative"]
        print(f"  cluster {summary['cluster']}{' (' + summary['name'] + ')' if summary['name'] else ''}: "
              f"{summary['size']} faces, cohesion {summary['cohesion']:.2f}, e.g. {face['photo']} face {face['face']}")
    if len(ids) > 10:
        print(f"  ... and {len(ids) - 10} more in {args.output}")
    if args.copy_to:
        print(f"a folder per cluster -> {clusters.copy_to(args.copy_to)}")
    if args.gallery:
        from keras_arcface.gallery import copy_gallery, gallery_file, gallery_lock, is_database

        with gallery_lock(args.gallery), copy_gallery(clusters.to_gallery(), args.gallery) as index:
            where = args.gallery if is_database(args.gallery) else gallery_file(args.gallery)
            print(f"{len(index)} faces of {len(clusters.names)} named clusters -> gallery {where} "
                  "(for `keras-arcface identify --gallery`)")
    if skipped:
        print(f"skipped {len(skipped)} file(s) or face(s):", *skipped, sep="\n  ", file=sys.stderr)
    return 0


def _embed(args):
    import json

    import numpy as np

    from keras_arcface.alignment import FaceAligner
    from keras_arcface.files import atomic_path, write_text_atomically
    from keras_arcface.verification import embed_folder

    embedder = _load_embedder(args)
    # Photos are detected and aligned onto the model's own crop, as verify does; aligned crops are taken as
    # they are unless --align asks to detect them too.
    aligner = FaceAligner(args.detector, choose=args.choose, spec=embedder.spec, rotate=args.rotate)
    result = embed_folder(args.directory, embedder, aligner, align_crops=args.align, all_faces=args.all_faces)
    embeddings, kept, skipped = result.embeddings, result.files, result.skipped
    output = embeddings_output(args.output)
    with atomic_path(output) as temporary, open(temporary, "wb") as handle:
        if output.suffix == ".npz":  # the embeddings, the files and faces they are of, in one archive
            np.savez(handle, embeddings=embeddings, files=np.asarray(kept, str),
                     faces=np.array(json.dumps(result.faces)))
        else:
            np.save(handle, embeddings)
    listing, faces = output.with_suffix(".txt"), output.with_suffix(".faces.json")
    write_text_atomically(listing, "\n".join(kept) + "\n")
    write_text_atomically(faces, json.dumps([{"file": path, **face} for path, face in zip(kept, result.faces)],
                                            indent=1))
    print(f"{len(kept)} embeddings of size {embeddings.shape[1]} -> {output} (files in {listing}, each row's face "
          f"in {faces})")
    several = len({path for path, face in zip(kept, result.faces) if face["faces_found"] > 1})
    if several and not args.all_faces:
        print(f"note: {several} photo(s) show several faces; the one --choose picks was embedded "
              "(--all-faces embeds every face)", file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} file(s):", *skipped, sep="\n  ", file=sys.stderr)
    return 0


def embeddings_output(path):
    """The file ``embed -o PATH`` writes: PATH itself when it ends in .npy or .npz, PATH.npy when it has no
    suffix; any other suffix is refused (it would not be the file asked for)."""
    from keras_arcface.errors import InputError

    output = pathlib.Path(path)
    if output.suffix in (".npy", ".npz"):
        return output
    if output.suffix == "":
        return output.with_name(f"{output.name}.npy")
    raise InputError(f"-o {path}: embed writes a .npy file (the embeddings) or a .npz file (embeddings and files); "
                     f"name it {output.with_suffix('.npy').name} or {output.with_suffix('.npz').name}")


def _export(args):
    import numpy as np

    from keras_arcface.data import FaceFolder
    from keras_arcface.embedding import load_keras_model, zoo_reference
    from keras_arcface.errors import InputError
    from keras_arcface.export import FORMATS, export, format_results
    from keras_arcface.export.export import recorded_spec
    from keras_arcface.runtime import InputSpec

    reference = zoo_reference(args.model) if args.model else (_default_model(), None)
    model = load_keras_model(reference[0] if reference else args.model, **_zoo_options(args))
    if reference is not None:
        from keras_arcface.zoo import model_card

        spec = InputSpec(**model_card(reference[0]).input_spec)
        args.name = args.name or reference[0]
    else:  # a folder (a run, a conversion) or a file in one: the spec its config.json records
        spec = recorded_spec(args.model, model)
    try:
        folder = FaceFolder.scan(args.faces, image_size=spec.size, warn=False)
        rng = np.random.default_rng(0)
        chosen = rng.choice(len(folder.images), size=min(args.num_faces, len(folder.images)), replace=False)
        faces = folder.images[np.sort(chosen)]
    except InputError:  # no crops of the model's size: ArcFace 112x112 crops mapped onto its crop
        from keras_arcface.alignment import sample_faces_for

        faces = sample_faces_for(args.faces, args.num_faces, spec)
    results = export(model, args.formats or list(FORMATS), args.output, faces,
                     name=args.name or "model", opset=args.opset, threshold=args.threshold,
                     source_name=args.model or reference[0], input_spec=spec)
    print(f"parity on {len(faces)} aligned faces from {args.faces}:")
    print(format_results(results))
    return 0


def _default_model():
    from keras_arcface.zoo import default_model

    return default_model()


def _convert(args):
    from keras_arcface.backbones import check_backbone_parameters
    from keras_arcface.convert import convert

    params = _json_object("--backbone-params", args.backbone_params)
    check_backbone_parameters(args.backbone, params)
    config = convert(args.source, args.backbone, args.output, args.faces, backbone_params=params,
                     embedding_size=args.embedding_size, weights_dtype=args.weights_dtype, num_faces=args.num_faces)
    parity = config["parity"]
    print(f"converted {args.source} onto {args.backbone} ({config['embedding_size']}-d): minimum cosine "
          f"{parity['min_cosine']:.7f}, mean {parity['mean_cosine']:.7f} on {parity['faces']} faces from "
          f"{args.faces} (gate {parity['gate']}); {args.output}/backbone.weights.h5 + config.json")
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """Each flag's help ends with its default (unless None or False: the help says it in words)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "%(default)" not in text):
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else "%(default)s"
            text += f" (default: {shown})"
        return text


def _whole_number_from_one(text):
    """argparse type: an integer >= 1 (``--top-k``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _number_within(low, high, what, closed):
    """An argparse type: a number in [low, high] (``closed``) or (low, high), ``what`` naming it in the error."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        inside = low <= value <= high if closed else low < value < high
        if not inside:
            bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
            raise argparse.ArgumentTypeError(f"must be {what} in {bounds}, got {text!r}")
        return value

    return parse


#: ``--threshold``: a cosine similarity; ``--far``: a false-accept rate.
_cosine = _number_within(-1.0, 1.0, "a cosine similarity", closed=True)
_rate = _number_within(0.0, 1.0, "a false-accept rate (such as 1e-3)", closed=False)
_quality = _number_within(0.0, 1.0, "a quality score", closed=True)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line ``error: ...`` with exit code 2, like every other expected failure."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


class _RegistryNames:
    """The names of a registry (heads, backbones, formats, ...), imported only when argparse needs
    them (to check a value or to print the help), so that the command starts without Keras."""

    def __init__(self, module, attribute):
        self.module, self.attribute = module, attribute

    def _names(self):
        import importlib

        return sorted(getattr(importlib.import_module(self.module), self.attribute))

    def __contains__(self, value):
        return value in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())


BACKBONE_NAMES = _RegistryNames("keras_arcface.backbones", "BACKBONES")
EXPORT_FORMATS = _RegistryNames("keras_arcface.formats", "FORMATS")


def build_parser():
    from keras_arcface import __version__
    from keras_arcface.alignment.detector import CHOICES, ROTATIONS

    parser = _Parser(prog="keras-arcface", description="Margin-softmax face models for Keras 3")
    parser.add_argument("--version", action="version", version=f"keras-arcface {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    def zoo_arguments(command):
        command.add_argument("--url", nargs="+", help="mirror base URLs or folders, tried in order "
                                                      "(default: $KERAS_ARCFACE_ZOO_URLS, else saved_models/)")
        command.add_argument("--cache-dir", help="cache folder (default: $KERAS_ARCFACE_CACHE or the XDG cache)")

    demo = commands.add_parser("demo", help="the default zoo model verifies bundled face pairs; TFLite parity")
    demo.add_argument("--model", help="a zoo name (name:format for one file), or a model file or folder with a "
                                      "calibrated threshold (default: the zoo's default model)")
    demo.add_argument("--pairs", help="an LFW-format pairs file instead of the bundled pairs")
    demo.add_argument("--images", help="aligned crops for --pairs, <images>/<Name>/<Name>_NNNN.jpg")
    zoo_arguments(demo)
    demo.set_defaults(func=_demo)

    demo_heads = commands.add_parser("demo-heads", help="train a small model with every margin head "
                                                         "on synthetic identities")
    demo_heads.add_argument("--heads", nargs="+", default=None, help="head names (default: all six)")
    demo_heads.add_argument("--epochs", type=int, default=12, help="training epochs per head")
    demo_heads.add_argument("--seed", type=int, default=0, help="seed of the synthetic data and the weights")
    demo_heads.set_defaults(func=_demo_heads)

    zoo = commands.add_parser("zoo", help="list, describe and download pretrained models")
    zoo_commands = zoo.add_subparsers(dest="zoo_command", required=True)
    zoo_list = zoo_commands.add_parser("list", help="the models to pick, their licences as stated, and where "
                                                    "each file comes from now (bundled, installed, cached, mirror)")
    zoo_list.add_argument("--commercial", action="store_true",
                          help="only models whose stated weight and training-data licences allow commercial use")
    zoo_list.add_argument("--all", action="store_true",
                          help="also the training-recipe examples (models trained here, below the quality bar)")
    zoo_arguments(zoo_list)
    zoo_info = zoo_commands.add_parser("info", help="a model's card")
    zoo_info.add_argument("name", help="zoo model name (keras-arcface zoo list)")
    zoo_download = zoo_commands.add_parser("download", help="fetch, verify and cache a model's files")
    zoo_download.add_argument("name", help="zoo model name (keras-arcface zoo list)")
    zoo_download.add_argument("--format", nargs="+", help="artifact formats (default: all)")
    zoo_arguments(zoo_download)
    zoo_pack = zoo_commands.add_parser("pack", help="build a model's Python package (a wheel: pip install it to "
                                                    "use the model by name, offline too)")
    zoo_pack.add_argument("names", nargs="+", help="zoo model names")
    zoo_pack.add_argument("-o", "--output", required=True, help="folder for the wheels")
    zoo_pack.add_argument("--format", nargs="+", help="the artifact formats to carry (default: all the card lists)")
    zoo_arguments(zoo_pack)
    zoo.set_defaults(func=_zoo)

    def training_arguments(command):
        from keras_arcface.training.config import TrainConfig

        add_config_arguments(command, TrainConfig)

    train = commands.add_parser("train", help="train a backbone with a margin head on face folders")
    training_arguments(train)
    train.set_defaults(func=_train)

    lr_find = commands.add_parser("lr-find", help="learning-rate range test: the train flags, a geometric "
                                  "lr ramp, the loss per step")
    training_arguments(lr_find)
    # (tests/test_cli.py checks these defaults against lr_range_test's)
    lr_find.add_argument("--min-lr", type=float, default=1e-4, help="first learning rate of the ramp")
    lr_find.add_argument("--max-lr", type=float, default=3.0, help="last learning rate of the ramp")
    lr_find.add_argument("--steps", type=int, default=100, help="steps of the ramp (stops early on divergence)")
    lr_find.set_defaults(func=_lr_find)

    def model_arguments(command):
        command.add_argument("--model", help="a zoo name (keras-arcface zoo list; NAME:FORMAT for one file, e.g. "
                                             "sface:onnx where zoo list shows it available), a .onnx / .tflite / "
                                             ".keras file, or a training output directory (default: the zoo's "
                                             "default model, bundled with the package)")
        command.add_argument("--input-spec", help='JSON InputSpec, e.g. \'{"layout": "NCHW", "mean": 0, "std": 1}\'')
        zoo_arguments(command)

    def threshold_arguments(command):
        command.add_argument("--threshold", type=_cosine, help="same-person threshold on the cosine similarity "
                             "(default: the operating point, the threshold the model card measured for a "
                             "false-accept rate of 1e-3 on LFW's different-person pairs; the default model: "
                             f"{_default_operating_point().replace('%', '%%')}; every model's in "
                             "docs/verification.md)")
        command.add_argument("--far", type=_rate, help="use the threshold the model card measured for this "
                                                       "false-accept rate: 1e-2, 1e-3 or 1e-4")

    evaluate = commands.add_parser("eval", help="LFW-protocol verification accuracy of a model")
    model_arguments(evaluate)
    evaluate.add_argument("--pairs", required=True, help="a pairs file in LFW's pairs.txt format")
    evaluate.add_argument("--images", required=True, help="aligned crops, <images>/<Name>/<Name>_NNNN.jpg")
    evaluate.add_argument("--flip", action="store_true", help="add the mirror image's embedding")
    evaluate.add_argument("--calibration-pairs", help="choose the threshold on these pairs and report --pairs at it "
                                                     "(lfw-dev: pairsDevTrain.txt, then pairsDevTest.txt)")
    evaluate.add_argument("--roc", help="write the ROC curve to this PNG")
    evaluate.add_argument("--json", help="write the full report to this JSON file")
    evaluate.add_argument("--folds", type=int, help="cross-validation folds (default: the pairs file's header, "
                                                    "else 10)")
    evaluate.add_argument("--limit", type=int, help="a quick look at about this many pairs: the same number of "
                                                    "same and different pairs from every fold")
    evaluate.add_argument("--save-threshold", action="store_true",
                          help="store the best global threshold with the model (used by verify)")
    evaluate.set_defaults(func=_eval)

    def aligner_arguments(command):
        command.add_argument("--detector", help="YuNet .onnx (default: $KERAS_ARCFACE_DETECTOR, else the bundled one)")
        command.add_argument("--choose", choices=CHOICES, default="best",
                             help="which face when several are found: best (the largest face of good quality, not "
                                  "one cut by the border or blurred), largest, or center")
        command.add_argument("--rotate", choices=ROTATIONS, default="auto",
                             help="auto: when no face is upright, try the photo turned by 90, 180 and 270 degrees "
                                  "and say which turn was used; none")

    def quality_arguments(command):
        command.add_argument("--min-quality", type=_quality, metavar="Q",
                             help="refuse faces whose quality score (0-1: size, detection, pose, sharpness, "
                                  "exposure, cut by the border) is below this, with the reasons; about 0.5 is a "
                                  "good face")

    verify = commands.add_parser(
        "verify", help="are two photos the same person? exit 0 same, 1 different, 2 error",
        description="Detect every face of each photo (each with a quality score), align and embed the one used, and "
                    "compare them at the model's operating point: the threshold measured for a false-accept rate of "
                    "1e-3 on LFW. Exit status: 0 same person, 1 different people, 2 error (bad input, no face, a "
                    "face below --min-quality, no threshold).")
    verify.add_argument("image_a", help="a photo (or an aligned crop)")
    verify.add_argument("image_b", help="another photo")
    verify.add_argument("--face-a", type=_whole_number_from_one, metavar="N",
                        help="use face N of image A (1, 2, ... left to right, as --json lists them)")
    verify.add_argument("--face-b", type=_whole_number_from_one, metavar="N", help="use face N of image B")
    verify.add_argument("--any-face", action="store_true", help="compare every face of A with every face of B and "
                                                                 "report the best-matching pair")
    model_arguments(verify)
    aligner_arguments(verify)
    quality_arguments(verify)
    threshold_arguments(verify)
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=_verify)

    index = commands.add_parser("index", help="build or add to a gallery of known faces for identify: one folder "
                                              "per person; photos already in it are skipped")
    index.add_argument("folder", help="<folder>/<person>/<photo>: raw photos, aligned on the way")
    index.add_argument("-o", "--output", required=True, help="the gallery, made or added to: a file (.npz), a "
                       "Milvus Lite folder (.db) or milvus://HOST:PORT/COLLECTION")
    index.add_argument("--rebuild", action="store_true", help="start the gallery afresh instead of adding to it")
    model_arguments(index)
    aligner_arguments(index)
    quality_arguments(index)
    index.set_defaults(func=_index, threshold=None, far=None)

    gallery = commands.add_parser("gallery", help="list, inspect, remove from, rename in or copy a gallery")
    gallery_commands = gallery.add_subparsers(dest="gallery_command", required=True)
    gallery_list = gallery_commands.add_parser("list", help="each identity and its number of faces")
    gallery_stats = gallery_commands.add_parser("stats", help="faces, identities, model, threshold (JSON)")
    gallery_remove = gallery_commands.add_parser("remove", help="remove an identity, or one photo's faces")
    gallery_rename = gallery_commands.add_parser("rename", help="rename an identity (merging it with one of that "
                                                                "name)")
    gallery_copy = gallery_commands.add_parser("copy", help="copy a gallery to another place or back-end (a file "
                                                            "to Milvus, or back), replacing what is there")
    for command in (gallery_list, gallery_stats, gallery_remove, gallery_rename, gallery_copy):
        command.add_argument("gallery", help=GALLERY_HELP)
    gallery_copy.add_argument("destination", help="where the copy goes: " + GALLERY_HELP)
    removed = gallery_remove.add_mutually_exclusive_group(required=True)
    removed.add_argument("--identity", help="every face of this identity")
    removed.add_argument("--file", help="the faces of this photo, by the path the gallery stores (`gallery list "
                                        "--files` shows them)")
    gallery_list.add_argument("--files", action="store_true", help="each face's identity and photo instead")
    gallery_rename.add_argument("identity", help="the identity to rename")
    gallery_rename.add_argument("new_name", help="its new name")
    gallery.set_defaults(func=_gallery)

    identify = commands.add_parser(
        "identify", help="who is in this photo? every face's best gallery identities; exit 0 someone known, "
                         "1 nobody known, 2 error")
    identify.add_argument("photo", help="a photo (every face in it is identified)")
    identify.add_argument("--face", type=_whole_number_from_one, metavar="N",
                          help="identify face N only (1, 2, ... left to right)")
    identify.add_argument("--gallery", required=True, help=GALLERY_HELP)
    identify.add_argument("--top-k", type=_whole_number_from_one, default=5, help="identities to list (>= 1)")
    identify.add_argument("--backend", choices=["numpy", "faiss"], default="numpy",
                          help="a gallery file's search: exact (numpy) or an approximate FAISS HNSW graph for large "
                               "galleries (a Milvus gallery searches in Milvus)")
    model_arguments(identify)
    aligner_arguments(identify)
    quality_arguments(identify)
    threshold_arguments(identify)
    identify.add_argument("--json", action="store_true", help="print the result as JSON")
    identify.set_defaults(func=_identify)

    from keras_arcface.service.settings import ServiceSettings

    defaults = ServiceSettings()
    serve = commands.add_parser(
        "serve", help="verification, identification and a gallery over HTTP (pip install keras-arcface[serve])",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="An HTTP service (FastAPI on uvicorn): POST /verify, /embed, /identify, /enroll; DELETE "
                    "/identities/{id}; GET /identities, /health, /ready; the OpenAPI page at /docs. Writes need an API "
                    "key (KERAS_ARCFACE_API_KEYS, comma-separated, or --api-key-file): without one the service is "
                    "read-only. docs/serving.md has the process model, a container and a Kubernetes recipe.")
    serve.add_argument("--model", help="a zoo name or model file (default: the gallery's model, else the zoo's "
                                       "default)")
    serve.add_argument("--gallery", help=GALLERY_HELP + "; without one, the gallery endpoints answer 404")
    serve.add_argument("--host", default=defaults.host, help="address to listen on (another than loopback opens the "
                                                             "service to the network)")
    serve.add_argument("--port", type=int, default=defaults.port, help="port to listen on")
    serve.add_argument("--workers", type=int, default=defaults.workers,
                       help="worker processes (a gallery file or a Milvus server: any number; a Milvus Lite file: 1)")
    serve.add_argument("--api-key-file", help="a file of API keys, one a line (beside KERAS_ARCFACE_API_KEYS)")
    serve.add_argument("--protect-reads", action="store_true", help="every endpoint but /health, /ready and the docs "
                                                                    "needs a key (writes always do)")
    serve.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes,
                       help="largest request body (413 past it)")
    serve.add_argument("--max-pixels", type=int, default=defaults.max_pixels,
                       help="largest image, from its header, before decoding")
    serve.add_argument("--timeout", dest="timeout_s", type=float, default=defaults.timeout_s,
                       help="seconds a request may take (503 / 504 past it)")
    serve.add_argument("--max-batch", type=int, default=defaults.max_batch,
                       help="faces one model call takes from concurrent requests (1: each request alone)")
    serve.add_argument("--threads", type=int, default=defaults.threads, help="requests a worker works on at once")
    serve.add_argument("--top-k", type=int, default=defaults.top_k, help="identities /identify lists by default")
    quality_arguments(serve)
    serve.set_defaults(func=_serve)

    from keras_arcface.clustering import DEFAULT_FAR, METHODS

    cluster = commands.add_parser(
        "cluster", help="who is in my photos? group the faces of unlabelled photos by person, name them once",
        description="Detect and embed every face of the photos and group them by person (no number of people "
                    "given); write the clusters (JSON, with a .npz beside it), add new photos to them later, "
                    "name clusters, and turn the named ones into a gallery for identify.")
    cluster.add_argument("photos", nargs="*", help="photos or folders of photos (searched recursively); new "
                                                   "photos join an existing clusters file")
    cluster.add_argument("-o", "--output", required=True, help="clusters file (.json; its .npz goes beside it)")
    cluster.add_argument("--far", type=_rate, default=DEFAULT_FAR,
                         help="link faces at the threshold the model card measured for this false-accept rate")
    cluster.add_argument("--threshold", type=_cosine, help="link faces at this cosine instead")
    cluster.add_argument("--min-size", type=_whole_number_from_one, default=2,
                         help="smaller groups are listed as unclustered")
    cluster.add_argument("--method", choices=METHODS, default="average",
                         help="average linkage over a nearest-neighbour graph, or single linkage (for comparison)")
    cluster.add_argument("--name", action="append", metavar="ID=NAME", help="name a cluster (repeatable)")
    cluster.add_argument("--copy-to", help="a folder per cluster holding links to its photos")
    cluster.add_argument("--gallery", help="write the named clusters as a gallery for identify, replacing it: a file "
                                           "(.npz), a Milvus Lite folder (.db) or milvus://HOST:PORT/COLLECTION")
    model_arguments(cluster)
    aligner_arguments(cluster)
    quality_arguments(cluster)
    cluster.set_defaults(func=_cluster)

    embed = commands.add_parser("embed", help="embeddings of every image in a folder")
    embed.add_argument("directory", help="folder of images (searched recursively)")
    model_arguments(embed)
    embed.add_argument("-o", "--output", required=True, help=".npy file; the file list goes beside it (.txt)")
    embed.add_argument("--align", action="store_true", help="detect and align aligned-size crops too (photos of "
                                                            "any other size are always detected and aligned)")
    embed.add_argument("--all-faces", action="store_true", help="embed every face of each photo (one row each) "
                                                                "instead of the one --choose picks")
    aligner_arguments(embed)
    embed.set_defaults(func=_embed)

    convert = commands.add_parser("convert", help="a pretrained .onnx / .tflite face model as a Keras backbone, "
                                  "parity-checked", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    convert.add_argument("source", help=".onnx or .tflite file")
    convert.add_argument("--backbone", required=True, choices=BACKBONE_NAMES, metavar="NAME",
                         help="the backbone whose layers receive the source's weights: %(choices)s")
    convert.add_argument("--backbone-params", default="{}",
                         help='JSON, e.g. \'{"padding": "same", "separable_pointwise": true}\'')
    convert.add_argument("--embedding-size", type=int, default=None, help="default: the source's output size")
    convert.add_argument("--faces", required=True, help="aligned face folder <root>/<identity>/<image> for the "
                                                        "parity check")
    convert.add_argument("--num-faces", type=int, default=400, help="faces drawn from --faces for the parity check")
    convert.add_argument("--weights-dtype", choices=["float32", "float16"], default="float32",
                         help="float16 halves the weights file (parity is checked with the stored weights)")
    convert.add_argument("-o", "--output", required=True, help="output folder (backbone.weights.h5, config.json)")
    convert.set_defaults(func=_convert)

    export = commands.add_parser("export", help="SavedModel / TFLite / ONNX files with parity checks")
    export.add_argument("--model", help="a zoo name, a training output directory, its weights file, or a .keras file "
                                        "(default: the zoo's default model)")
    export.add_argument("--formats", nargs="+", choices=EXPORT_FORMATS, metavar="FORMAT",
                        help="export formats, any of: %(choices)s (default: all)")
    export.add_argument("--faces", required=True,
                        help="aligned face folder <root>/<identity>/<image>: parity set and int8 calibration")
    export.add_argument("--num-faces", type=int, default=200, help="faces drawn from --faces for parity and int8 "
                                                                    "calibration")
    export.add_argument("-o", "--output", required=True, help="output directory")
    export.add_argument("--name", help="file name prefix (default: the zoo name, else model)")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset")
    export.add_argument("--threshold", type=float, help="calibrated threshold to store in the metadata")
    zoo_arguments(export)
    export.set_defaults(func=_export)
    return parser


#: Commands that always build Keras models.
KERAS_COMMANDS = ("train", "lr-find", "export", "convert", "demo-heads")


def _uses_keras(args):
    """Whether the command will import Keras (and so its backend): the training and export commands,
    the demo when Keras is installed, and a Keras model (.keras, a run folder, ``name:keras``)."""
    from keras_arcface.embedding import keras_available, zoo_reference

    if args.command in KERAS_COMMANDS:
        return True
    if args.command == "demo":
        return keras_available()
    model = getattr(args, "model", None)
    if model is None:
        return False
    reference = zoo_reference(model)
    if reference is not None:
        return reference[1] == "keras"
    from keras_arcface.formats import is_runtime_file

    return not is_runtime_file(model)


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    import warnings

    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"  # one line, as errors are
    args = build_parser().parse_args(argv)
    from keras_arcface.errors import InputError

    try:
        if args.command in KERAS_COMMANDS:
            from keras_arcface.runtime import require_keras

            require_keras(f"keras-arcface {args.command}")
        if "tensorflow" not in sys.modules and _uses_keras(args):
            from keras_arcface.runtime import keras_available

            if keras_available():  # else the command itself says what to install
                from keras_arcface.runtime.keras_required import quiet_tensorflow

                quiet_tensorflow()
        return args.func(args)
    except BrokenPipeError:  # e.g. `keras-arcface zoo list | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (InputError, FileNotFoundError) as error:
        # Expected failures: one line, exit 2.  Anything else is a bug and keeps its traceback.
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2


def one_line(error):
    """An error's message on one line (a missing file's message names the file)."""
    if isinstance(error, FileNotFoundError) and error.filename:
        text = f"{error.filename}: {error.strerror or 'not found'}"
    else:
        text = getattr(error, "cli_message", None) or str(error)  # the command line's flags, where they differ
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
