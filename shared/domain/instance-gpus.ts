/**
 * Which EC2 instance types have NVIDIA GPUs, the only ones Docker's `--gpus` can use (through the
 * NVIDIA container toolkit of the Deep Learning AMI). Other accelerators (AMD in g4ad, Inferentia,
 * Trainium, Gaudi in dl1) are not reachable through `--gpus`.
 */

/** Families whose every size has at least one NVIDIA GPU. */
const NVIDIA_FAMILIES: ReadonlySet<string> = new Set([
  'p2', 'p3', 'p3dn', 'p4d', 'p4de', 'p5', 'p5e', 'p5en', 'p6-b200', 'p6e-gb200',
  'g3', 'g3s', 'g4dn', 'g5', 'g5g', 'g6', 'g6e', 'g6f', 'gr6', 'gr6f',
]);

/** The family of an instance type: `g5.xlarge` → `g5`, `p6-b200.48xlarge` → `p6-b200`. */
export function instanceFamily(instanceType: string): string {
  return instanceType.split('.')[0] ?? instanceType;
}

/** Whether instances of this type have an NVIDIA GPU that `docker run --gpus` can use. */
export function hasNvidiaGpu(instanceType: string): boolean {
  return NVIDIA_FAMILIES.has(instanceFamily(instanceType));
}
