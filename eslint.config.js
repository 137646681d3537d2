// @ts-check
// ESLint: the recommended rules of ESLint and typescript-eslint, type-aware (recommendedTypeChecked:
// floating and misused promises, `any` flowing into typed code, awaiting non-promises, unbound
// methods), over the TypeScript and the plain JavaScript alike. The types come from TypeScript
// itself: the project service (tsconfig.json) for the TypeScript; for the JavaScript, which
// tsconfig.json leaves out, the configs that type-check it from its JSDoc (tsconfig.js.json,
// tsconfig.page.json). Formatting is Prettier's job (.prettierrc.json), not ESLint's.
import eslint from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', '.node24/', 'coverage/', 'data/', 'test-artifacts/', 'bench/results/', 'examples/']),
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a binding kept on purpose (a callback's position, a rest sibling).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Off: here `async` marks an implementation of a promise-returning interface (the SQLite
      // store behind TokenStore, sinks' close()), so that a throw becomes a rejection, as callers
      // expect. Every report of it in src/ was such a method.
      '@typescript-eslint/require-await': 'off',
      // A switch over a union (error codes, ecosystems, token types) names every member or has a default.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // JavaScript: the bench, the bin, this file and the admin page's script. TypeScript checks
    // names (checkJs), so no-undef would only repeat it without the globals. The no-unsafe-*
    // rules are off: the JSDoc casts that type a JSON.parse() or a dynamic import() sit on the
    // parentheses, which ESLint's tree drops, so the rules would see `any` through every cast.
    // Event and timer callbacks may be async functions that handle their own errors.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.js.json' } },
    rules: {
      'no-undef': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    files: ['**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The admin page's script runs in a browser: the DOM library, no Node types.
    files: ['src/admin/page/**/*.js'],
    languageOptions: { parserOptions: { project: './tsconfig.page.json' } },
  },
);
