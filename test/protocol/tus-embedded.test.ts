import { startInProcessFerry } from '../helpers/in-process-ferry.js';
import { tusCoreSuite } from './tus-core.suite.js';
import { tusExtensionsSuite } from './tus-extensions.suite.js';

// The tus conformance suites against embedded mode (disk, in-process locks and records).
tusCoreSuite('embedded mode, disk', startInProcessFerry);
tusExtensionsSuite('embedded mode, disk', startInProcessFerry);
