import { z } from 'zod';

/** Placeholder; the hyperparameter module defines the real schema and argv builder. */
export const HyperparametersSchema = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
