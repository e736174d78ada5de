import { z } from 'zod';
import { notifySchema } from './notify';
import { strictObject } from './strict';

/** The job kinds a pipeline step may run (not pipelines themselves). */
export const pipelineStepKinds = ['import', 'bulk-update', 'cleanup', 'custom'] as const;
export type PipelineStepKind = (typeof pipelineStepKinds)[number];

const stepSchema = strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lower_snake_case'),
  kind: z.enum(pipelineStepKinds),
  params: z.record(z.string(), z.unknown()),
  /** Steps that must succeed first. */
  dependsOn: z.array(z.string()).max(50).default([]),
});
export type PipelineStep = z.infer<typeof stepSchema>;

/** Parameters of a pipeline, its step params checked with each step kind's own schema. */
export function pipelineParamsSchema(stepSchemas: Record<PipelineStepKind, z.ZodType>) {
  return strictObject({
    steps: z.array(stepSchema).min(1).max(50),
    /** Independent steps that may run at the same time. */
    maxParallel: z.number().int().min(1).max(10).default(2),
    /** Who to tell when the pipeline ends (each step may carry its own `notify` too). */
    notify: notifySchema.optional(),
  }).superRefine((params, ctx) => {
    const names = new Set<string>();
    params.steps.forEach((step, i) => {
      if (names.has(step.name)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'name'], message: `step "${step.name}" appears twice` });
      names.add(step.name);
      const parsed = stepSchemas[step.kind].safeParse(step.params);
      // Each issue keeps its code (an unknown key stays one, named with its suggestion).
      for (const issue of parsed.success ? [] : parsed.error.issues) ctx.addIssue({ ...issue, path: ['steps', i, 'params', ...issue.path] });
    });
    params.steps.forEach((step, i) =>
      step.dependsOn.forEach((dep, j) => {
        if (!names.has(dep)) ctx.addIssue({ code: 'custom', path: ['steps', i, 'dependsOn', j], message: `no step named "${dep}"` });
      }),
    );
    const cycle = findCycle(params.steps);
    if (cycle) ctx.addIssue({ code: 'custom', path: ['steps'], message: `steps depend on each other in a cycle: ${cycle.join(' → ')}` });
  });
}
export type PipelineParams = z.infer<ReturnType<typeof pipelineParamsSchema>>;

function findCycle(steps: readonly { name: string; dependsOn: readonly string[] }[]): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.name, s.dependsOn]));
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    for (const dep of deps.get(name) ?? []) {
      const cycle = visit(dep, [...path, name]);
      if (cycle) return cycle;
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const s of steps) {
    const cycle = visit(s.name, []);
    if (cycle) return cycle;
  }
  return undefined;
}
