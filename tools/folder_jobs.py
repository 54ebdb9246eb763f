"""Runs a dataset tool's jobs in worker processes with a progress bar.

The folder-converting tools (sbd_to_clsimg, voc_to_segcls,
make_oversegmentation, cityscapes_to_segcls) turn every input file into one
output file. They share the --workers and --overwrite flags and
`run_file_jobs`: outputs that exist and are newer than their inputs are
skipped unless overwriting, the rest are made in a process pool.
make_synthetic_voc, camvid_to_voc and import_dataset run their own jobs
with `run_jobs`. `check_inputs` reads every
input first, so that a bad file stops the tool before it writes anything;
`input_files` and `folder_flag` refuse a missing or empty input folder and a
blocked output folder before any work.
"""

import argparse
import functools
import multiprocessing
import os
import signal

from segsort import console
from segsort import errors
from segsort import flags
from segsort import io_utils


def folder_flag(parser, args, name, default, output=False):
  """The folder of flag --name, else `default`, refused if unusable.

  Args:
    parser: The argparse.ArgumentParser, whose usage error stops the tool.
    args: The parsed flags.
    name: The flag's name without dashes, e.g. 'input_dir'.
    default: The folder when the flag is not given (derived from
      --data_dir, which the error then names).
    output: Whether it is a folder to write into (made when missing)
      rather than one to read.

  Returns:
    The folder.
  """
  given = getattr(args, name)
  folder = given or default
  # A --data_dir left at its default was not the user's choice: the error
  # then names the flag to give.
  data_dir_given = getattr(args, 'data_dir', None) != parser.get_default(
    'data_dir'
  )
  flag = '--' + name if given or not data_dir_given else '--data_dir'
  if output:
    flags.check_derived_output(parser, flag, folder, folder=True)
  elif not os.path.isdir(folder):
    parser.error(
      'argument %s: %s%s'
      % (
        flag,
        '%s is not a folder' % folder
        if os.path.exists(folder)
        else 'no folder %s' % folder,
        ''
        if given or data_dir_given
        else ' (--%s not given, nor --data_dir)' % name,
      )
    )
  return folder


def files_with_extension(folder, extension):
  """The sorted names of the `extension` files of a folder (none if missing).

  Args:
    folder: A folder path.
    extension: The files' extension, matched without case, e.g. '.png'.
  """
  if not os.path.isdir(folder):
    return []
  return sorted(
    name
    for name in os.listdir(folder)
    if name.lower().endswith(extension)
    and os.path.isfile(os.path.join(folder, name))
  )


def input_files(parser, folder, extension):
  """The sorted names of the `extension` files of a folder, refused if none.

  Args:
    parser: The argparse.ArgumentParser, whose usage error stops the tool.
    folder: A folder (see `folder_flag`).
    extension: The files' extension, matched without case, e.g. '.png'.
  """
  names = files_with_extension(folder, extension)
  if not names:
    parser.error('%s holds no %s file' % (folder, extension))
  return names


def check_writable(folders=(), files=()):
  """Refuses, before any work, outputs that a file or folder blocks.

  Args:
    folders: Folders to write into (made when missing).
    files: Files to write.

  Raises:
    ValueError: Naming the first blocked path (segsort.flags' wording).
  """
  try:
    for folder in folders:
      flags.output_folder(folder)
    for path in files:
      flags.output_file(path)
  except argparse.ArgumentTypeError as error:
    raise ValueError(str(error)) from error


def add_job_flags(
  parser, items='files', workers_help='Parallel worker processes.'
):
  """Adds the --workers and --overwrite flags.

  Args:
    parser: An argparse.ArgumentParser.
    items: What the inputs are called in --overwrite's help, e.g. 'images'.
    workers_help: The help text of --workers.
  """
  parser.add_argument(
    '--workers',
    type=flags.integer(1),
    default=os.cpu_count(),
    help=workers_help,
  )
  parser.add_argument(
    '--overwrite',
    action='store_true',
    help='Redo %s whose output exists.' % items,
  )


def run_jobs(work, jobs, workers, progress=True, desc='', unit='file'):
  """Calls `work` on every job, in a process pool when that helps.

  Args:
    work: A picklable function of one job.
    jobs: A list of jobs, run in any order.
    workers: The number of processes; with one (or fewer), or with a single
      job, the jobs run in this process.
    progress: Whether to show progress (a bar on a terminal, else log
      lines; see segsort.console.progress).
    desc: What the progress counts, e.g. 'Checking'.
    unit: What one job is, e.g. 'image'.

  Returns:
    The list of `work`'s results, in the order of `jobs`.

  Raises:
    SystemExit: With a one-line message when interrupted (Ctrl-C); the
      tools write every file whole (segsort.io_utils.atomic_path), so a
      rerun continues.
  """
  try:
    return _run_jobs(work, jobs, workers, progress, desc, unit)
  except KeyboardInterrupt:
    raise SystemExit(errors.INTERRUPTED_MESSAGE) from None


def _ignore_interrupts():
  # Ctrl-C reaches every process of the terminal's group; the workers leave
  # it to the parent, which stops the pool, instead of each printing a
  # traceback.
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_jobs(work, jobs, workers, progress, desc, unit):
  # The bars are closed before an error propagates, so that its message
  # starts a line of its own.
  if workers > 1 and len(jobs) > 1:
    with multiprocessing.Pool(workers, initializer=_ignore_interrupts) as pool:
      with console.progress(
        pool.imap(work, jobs),
        total=len(jobs),
        desc=desc,
        unit=unit,
        disable=not progress,
      ) as results:
        return list(results)
  with console.progress(
    jobs, desc=desc, unit=unit, disable=not progress
  ) as bar:
    return [work(job) for job in bar]


def _refusal(check, job):
  """The message of the ValueError `check(job)` raises, or None."""
  try:
    check(job)
  except ValueError as error:
    return str(error)
  return None


# The refusals named in full on the error line; the rest are counted.
MAX_REFUSALS_SHOWN = 10


class BadInputsError(ValueError):
  """Inputs that `check_inputs` refused, named on one line."""


def check_inputs(check, jobs, workers, unit='file'):
  """Runs `check` on every job first, so that bad inputs stop the tool early.

  Args:
    check: A picklable function of one job that reads its inputs and raises
      a ValueError naming the file when one is bad.
    jobs: The jobs about to run.
    workers: The number of processes (see `run_jobs`).
    unit: What one job is, e.g. 'image'.

  Raises:
    BadInputsError: Naming every refused input on one line (the first
      MAX_REFUSALS_SHOWN, then a count).
  """
  refusals = [
    refusal
    for refusal in run_jobs(
      functools.partial(_refusal, check),
      jobs,
      workers,
      desc='Checking',
      unit=unit,
    )
    if refusal is not None
  ]
  if refusals:
    raise BadInputsError(
      '%d bad input(s), nothing written: %s'
      % (len(refusals), errors.join_problems(refusals, MAX_REFUSALS_SHOWN))
    )


def _paths(inputs):
  """A job's input paths: one path, or a (possibly nested) tuple of them."""
  if isinstance(inputs, (str, os.PathLike)):
    return [inputs]
  return [path for item in inputs for path in _paths(item)]


def run_file_jobs(
  convert,
  jobs,
  overwrite,
  workers,
  output_dir,
  summary,
  check=None,
  unit='file',
  also_check=(),
  before_writing=None,
  remake_outdated=True,
):
  """Makes the missing or outdated (or, overwriting, all) outputs of file
  jobs; an output older than one of its inputs is outdated (an image edited
  since its oversegmentation, say).

  Args:
    convert: A picklable function of one `(input_path, output_path)` job
      that writes output_path.
    jobs: A list of `(input_path, output_path)` pairs; an input may be a
      tuple of paths.
    overwrite: Whether to redo jobs whose output exists: a bool, or a
      function of an existing output's path.
    workers: The number of processes (see `run_jobs`).
    output_dir: The folder of the outputs; created if missing.
    summary: A format string printed first, given the number of jobs, the
      number to run and output_dir, e.g. '%d PNGs, %d to convert into %s'.
    check: When given, a picklable function of an input path run on every
      input to convert before anything is written (`check_inputs`).
    unit: What one job is, e.g. 'image'.
    also_check: More inputs for `check` that make no output (e.g. the
      unlabelled images a list will name), refused with the jobs' inputs.
    before_writing: When given, a function called once the checks have
      passed and output_dir exists, before the first output (e.g. to record
      the settings the outputs are made with).
    remake_outdated: Whether outdated outputs are made again; False keeps
      every existing output (e.g. of unknown settings, which this run's
      would not match).

  Raises:
    SystemExit: With the one-line message of the outputs that a folder
      blocks, or of the inputs that `check` refuses, before anything is
      written; or of an input that `convert`
      refuses (a ValueError naming the file), the outputs made so far
      complete.
  """
  # A folder (or other non-file) at an output path would pass for a done
  # job, or fail to be overwritten halfway through the run.
  blocked = [
    job[1]
    for job in jobs
    if os.path.exists(job[1]) and not os.path.isfile(job[1])
  ]
  if blocked:
    raise SystemExit(
      'error: %d output(s) blocked by a folder or other non-file, nothing '
      'written: %s' % (len(blocked), errors.join_problems(blocked))
    )
  redo = overwrite if callable(overwrite) else lambda path: overwrite
  todo = [
    job
    for job in jobs
    if not os.path.exists(job[1])
    or redo(job[1])
    or (
      remake_outdated and not io_utils.output_is_newer([job[1]], _paths(job[0]))
    )
  ]
  print(summary % (len(jobs), len(todo), output_dir))
  if check is not None:
    try:
      check_inputs(
        check, [job[0] for job in todo] + list(also_check), workers, unit
      )
    except BadInputsError as error:
      raise SystemExit('error: %s' % error) from error
  os.makedirs(output_dir, exist_ok=True)
  if before_writing is not None:
    before_writing()
  try:
    run_jobs(convert, todo, workers, desc='Writing', unit=unit)
  except ValueError as error:
    raise SystemExit(
      'error: %s (the outputs written are complete; fix or '
      'remove the file, then run again to continue)' % error
    ) from error
