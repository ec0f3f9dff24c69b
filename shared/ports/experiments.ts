import type { ListOptions, Page } from './run-store';

/** An experiment as `GET /experiments` lists it. */
export interface ExperimentView {
  name: string;
  createdAt: string;
  /** When its newest run was recorded. */
  updatedAt: string;
  /** Runs recorded in it. */
  runs: number;
}

/** The catalog of an owner's experiments; the runs of one are listed by the run store. */
export interface Experiments {
  /** The owner's experiments, by name. */
  list(owner: string, options?: ListOptions): Promise<Page<ExperimentView>>;
  get(owner: string, name: string): Promise<ExperimentView | undefined>;
}
