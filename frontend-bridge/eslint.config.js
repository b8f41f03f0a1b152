// One lint configuration for the browser side: the client module, the page, the dev stand-ins and the tests.
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["dist/", "src/generated/", "test-artifacts/", "node_modules/"] },
  js.configs.recommended,
  {
    files: ["src/**/*.js", "web/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser } },
  },
  {
    files: ["scripts/**/*.{js,mjs}", "eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.node } },
  },
  {
    // Node programs that also hand functions to the browser (page.evaluate): both sets of globals.
    files: ["dev/**/*.{js,mjs}", "test/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.node, ...globals.browser } },
  },
  {
    rules: {
      "no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
];
