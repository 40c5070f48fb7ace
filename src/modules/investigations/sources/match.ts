// Filtering of contracts held in memory (sample, upload) and of Portal pages: the query module's matcher.
export { selectionMatcher as contractMatcher } from '../../query/select.js';
