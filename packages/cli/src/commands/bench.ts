export { runBench } from "@dfs/bench";
