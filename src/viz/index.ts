// Notebook display helpers: plotly figure specs (plain JSON) and functions that show them, tables,
// markdown and progress in a tslab notebook. Outside a notebook the show* functions print text.
export { COLOR_SCALES, KIND_SCALE, PALETTE } from './colors';
export type { StateKind, Colorscale } from './colors';
export type { Figure, Trace, Layout, CommonOptions } from './figure';
export { heatmap, tokenLabels } from './heatmap';
export type { HeatmapOptions } from './heatmap';
export { lineChart, barChart } from './charts';
export type { ChartOptions } from './charts';
export type { Series } from './series';
export { subplots } from './subplots';
export type { SubplotOptions } from './subplots';
export { showFigure, figureHtml, plotlyScript } from './show';
export { showTable, tableHtml, tableText } from './table';
export type { TableOptions } from './table';
export { markdown } from './markdown';
export { progress, progressCallback, track } from './progress';
export type { Progress } from './progress';
export { inTslab } from './tslab';
export { FactlensError } from '../errors';
