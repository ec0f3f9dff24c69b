/**
 * Bash text for dataset volumes, sent through SSM `AWS-RunShellScript`: find the attached
 * device by its volume id, format it only when it is blank, mount it, and (on the prewarm
 * helper) fill it from S3, verify it against the source listing and unmount it.
 *
 * On Nitro instances the device name given to AttachVolume is not the one the kernel uses
 * (`/dev/sdf` shows up as `/dev/nvme1n1`); the NVMe serial number is the volume id without its
 * dash, which udev publishes as `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol…`.
 */
import { shellQuote } from '../domain/shell';

/** Exit codes, distinct so the step handlers can name the failure. */
export const VOLUME_EXIT = {
  deviceNotFound: 30,
  datasetEmpty: 31,
  accessDenied: 32,
  syncFailed: 33,
  verifyFailed: 34,
  tooSmall: 35,
  notBlank: 36,
  mountFailed: 37,
} as const;

/** Device name passed to AttachVolume (the kernel name differs on Nitro; see findDeviceFunction). */
export const ATTACH_DEVICE = '/dev/sdf';

const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
const ABSOLUTE_PATH = /^\/[A-Za-z0-9._/-]*$/;

function checkVolumeId(volumeId: string): string {
  if (!VOLUME_ID.test(volumeId)) throw new Error(`not an EBS volume id: ${volumeId}`);
  return volumeId;
}

function checkPath(path: string, what: string): string {
  if (!ABSOLUTE_PATH.test(path) || path.split('/').includes('..')) {
    throw new Error(`${what} must be an absolute path of letters, digits, ".", "_", "-" and "/", got ${path}`);
  }
  return path;
}

/**
 * `find_device <volume-id> <attach-device>`: prints the block device of an attached volume,
 * waiting up to two minutes for udev. Looks up the NVMe serial (Nitro), then the Xen name.
 */
export function findDeviceFunction(): string {
  return [
    'find_device() {',
    '  local serial="${1/-/}" xen="${2/\\/dev\\/sd//dev/xvd}" i dev',
    '  for i in $(seq 1 "${RUNCTL_DEVICE_WAIT_TRIES:-60}"); do',
    '    for dev in "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}" "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${serial}_1"; do',
    '      if [ -e "$dev" ]; then readlink -f "$dev"; return 0; fi',
    '    done',
    '    dev=$(lsblk -dpno NAME,SERIAL 2>/dev/null | awk -v s="$serial" \'$2 == s { print $1; exit }\')',
    '    if [ -n "$dev" ]; then echo "$dev"; return 0; fi',
    '    for dev in "$xen" "$2"; do',
    '      if [ -b "$dev" ]; then readlink -f "$dev"; return 0; fi',
    '    done',
    '    sleep 2',
    '  done',
    '  return 1',
    '}',
  ].join('\n');
}

/**
 * `prepare_filesystem <device> <format-if-blank yes|no>`: a device with any signature (a file
 * system, a partition table, LVM) is never formatted; a blank one is formatted ext4 only when
 * allowed. `blkid -p` probes the device itself, not a cache.
 */
function prepareFilesystemFunction(): string {
  return [
    'prepare_filesystem() {',
    '  local dev=$1 allow=$2 found',
    '  found=$(blkid -p -o value -s TYPE "$dev" 2>/dev/null || true)',
    '  if [ -z "$found" ] && blkid -p "$dev" >/dev/null 2>&1; then found=other; fi',
    '  if [ -n "$found" ]; then echo "runctl volume: $dev holds $found; not formatting it" >&2; return 0; fi',
    '  if [ "$allow" != yes ]; then',
    `    echo "runctl volume: $dev has no file system and this volume must already hold data" >&2; exit ${VOLUME_EXIT.notBlank}`,
    '  fi',
    '  echo "runctl volume: $dev is blank; formatting ext4" >&2',
    '  mkfs.ext4 -q -m 0 -L runctl-data -E lazy_itable_init=0,lazy_journal_init=0 "$dev" >&2',
    '}',
  ].join('\n');
}

export interface MountVolumeOptions {
  volumeId: string;
  mountPath: string;
  /** Read every block once, so a volume restored from a snapshot is not lazily loaded during training. */
  initialize: boolean;
}

/**
 * Attach side, on a training instance: find the device, mount it read-only (a dataset volume
 * is never formatted here: a blank one is an error), optionally read it once with `fio` (or
 * `dd` when fio is missing). Prints `{"device","mountPath","initialized"}`. Idempotent.
 */
export function mountVolumeCommand(options: MountVolumeOptions): string {
  const volumeId = checkVolumeId(options.volumeId);
  const mountPath = checkPath(options.mountPath, 'mountPath');
  return [
    '#!/bin/bash',
    'set -euo pipefail',
    findDeviceFunction(),
    prepareFilesystemFunction(),
    `volume=${volumeId}`,
    `mnt="\${RUNCTL_INSTANCE_ROOT:-}"${shellQuote(mountPath)}`,
    `dev=$(find_device "$volume" ${ATTACH_DEVICE}) || { echo "runctl volume: $volume is not attached to this instance" >&2; exit ${VOLUME_EXIT.deviceNotFound}; }`,
    'prepare_filesystem "$dev" no',
    'initialized=false',
    ...(options.initialize
      ? [
          // Reading the raw device hydrates every block from S3 once; fio reads in parallel, dd serially.
          'if command -v fio >/dev/null 2>&1; then',
          '  fio --filename="$dev" --rw=read --bs=1M --iodepth=32 --ioengine=libaio --direct=1 --name=runctl-initialize --output=/dev/null',
          'else',
          '  dd if="$dev" of=/dev/null bs=1M status=none',
          'fi',
          'initialized=true',
        ]
      : []),
    'mkdir -p "$mnt"',
    'if ! mountpoint -q "$mnt"; then',
    `  mount -o ro,noatime "$dev" "$mnt" || { echo "runctl volume: cannot mount $dev at $mnt" >&2; exit ${VOLUME_EXIT.mountFailed}; }`,
    'fi',
    `printf '{"device":"%s","mountPath":"%s","initialized":%s}\\n' "$dev" ${shellQuote(mountPath)} "$initialized"`,
    '',
  ].join('\n');
}

/** Release side: unmount a dataset volume before it is detached (nothing mounted is success). */
export function unmountVolumeCommand(mountPath: string): string {
  const path = checkPath(mountPath, 'mountPath');
  return [
    '#!/bin/bash',
    'set -uo pipefail',
    `mnt="\${RUNCTL_INSTANCE_ROOT:-}"${shellQuote(path)}`,
    'if mountpoint -q "$mnt"; then sync; umount "$mnt" || umount -l "$mnt"; fi',
    `echo '{"unmounted":true}'`,
    '',
  ].join('\n');
}

export interface FillVolumeOptions {
  volumeId: string;
  /** `s3://bucket/prefix/`. */
  datasetUri: string;
  /** Format the device when blank (a new volume); false for one restored from a snapshot. */
  formatIfBlank: boolean;
}

/**
 * Prewarm helper: list the source (count and bytes, directory markers left out), refuse an
 * empty prefix or a volume too small, mount read-write, `aws s3 sync --delete`, compare the
 * tree with the listing, unmount. Prints `{"files","bytes","sourceFiles","sourceBytes"}`.
 */
export function fillVolumeCommand(options: FillVolumeOptions): string {
  const volumeId = checkVolumeId(options.volumeId);
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(options.datasetUri);
  if (match === null) throw new Error(`dataset must be an s3:// URI, got ${options.datasetUri}`);
  const bucket = match[1] ?? '';
  const prefix = (match[2] ?? '/').slice(1).replace(/\/*$/, '/').replace(/^\/$/, '');
  return [
    '#!/bin/bash',
    'set -uo pipefail',
    findDeviceFunction(),
    prepareFilesystemFunction(),
    `volume=${volumeId}`,
    `bucket=${shellQuote(bucket)}`,
    `prefix=${shellQuote(prefix)}`,
    'mnt="${RUNCTL_INSTANCE_ROOT:-}/mnt/runctl-prewarm/$volume"',
    'err=$(mktemp)',
    'fail() { local code=$1; shift; echo "runctl prewarm: $*" >&2; exit "$code"; }',
    // An S3 call failed (its stderr in $err): refused access and anything else exit differently.
    `s3_failed() { if grep -qE "AccessDenied|Forbidden|403" "$err"; then fail ${VOLUME_EXIT.accessDenied} "$1: $(tail -n 1 "$err")"; fi; fail ${VOLUME_EXIT.syncFailed} "$2: $(tail -n 1 "$err")"; }`,
    // Text output streams page by page; a key ending in "/" is a console "folder" marker that sync does not create.
    'listing=$(aws s3api list-objects-v2 --bucket "$bucket" --prefix "$prefix" --output text --query "Contents[].[Key,Size]" 2>"$err")',
    `if [ $? -ne 0 ]; then s3_failed "access denied to s3://$bucket/$prefix" "cannot list s3://$bucket/$prefix"; fi`,
    'read -r source_files source_bytes < <(printf "%s\\n" "$listing" | awk -F "\\t" \'$1 != "None" && $1 != "" && $1 !~ /\\/$/ { n++; b += $2 } END { printf "%d %.0f\\n", n, b }\')',
    `if [ "$source_files" -eq 0 ]; then fail ${VOLUME_EXIT.datasetEmpty} "dataset s3://$bucket/$prefix is empty (no object under it)"; fi`,
    `dev=$(find_device "$volume" ${ATTACH_DEVICE}) || fail ${VOLUME_EXIT.deviceNotFound} "volume $volume is not attached to this instance"`,
    `prepare_filesystem "$dev" ${options.formatIfBlank ? 'yes' : 'no'}`,
    'mkdir -p "$mnt"',
    `mountpoint -q "$mnt" || mount -o noatime "$dev" "$mnt" || fail ${VOLUME_EXIT.mountFailed} "cannot mount $dev"`,
    'trap \'sync; umount "$mnt" 2>/dev/null || true\' EXIT',
    // Room needed: what the source holds minus what the tree (a restored snapshot) already has.
    'have=$(find "$mnt" -type f -printf "%s\\n" | awk \'{ b += $1 } END { printf "%.0f\\n", b }\')',
    'avail=$(df --output=avail -B1 "$mnt" | tail -n 1 | tr -d " ")',
    `if [ $((source_bytes - have)) -gt "$avail" ]; then fail ${VOLUME_EXIT.tooSmall} "dataset needs $source_bytes bytes and the volume has $avail free (+$have in place); prewarm with a larger sizeGiB"; fi`,
    'aws s3 sync "s3://$bucket/$prefix" "$mnt/" --delete --only-show-errors 2>"$err" >&2',
    `if [ $? -ne 0 ]; then s3_failed "access denied while syncing" "sync failed"; fi`,
    'sync',
    'read -r files bytes < <(find "$mnt" -path "$mnt/lost+found" -prune -o -type f -printf "%s\\n" | awk \'{ n++; b += $1 } END { printf "%d %.0f\\n", n, b }\')',
    'if [ "$files" -ne "$source_files" ] || [ "$bytes" -ne "$source_bytes" ]; then',
    `  fail ${VOLUME_EXIT.verifyFailed} "verification failed: volume has $files files / $bytes bytes, source lists $source_files / $source_bytes"`,
    'fi',
    'trap - EXIT',
    `umount "$mnt" || fail ${VOLUME_EXIT.mountFailed} "cannot unmount $mnt"`,
    'printf \'{"files":%d,"bytes":%s,"sourceFiles":%d,"sourceBytes":%s,"device":"%s"}\\n\' "$files" "$bytes" "$source_files" "$source_bytes" "$dev"',
    '',
  ].join('\n');
}
