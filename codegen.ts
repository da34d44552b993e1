// GraphQL Code Generator: typed documents and the persisted-documents manifest (sha256 hash → document) of
// each client, from the committed schema. `npm run codegen` after changing an operation; a test fails when a
// generated file is out of date.
import type { CodegenConfig } from "@graphql-codegen/cli";

const client = (name: "mobile" | "web") => ({
  [`clients/${name}/generated/`]: {
    documents: [`clients/${name}/*.graphql`],
    preset: "client" as const,
    presetConfig: {
      fragmentMasking: false,
      persistedDocuments: { mode: "embedHashInDocument" as const, hashAlgorithm: "sha256" },
    },
    config: { enumsAsTypes: true, useTypeImports: true },
  },
});

const config: CodegenConfig = {
  schema: "schema/schema.graphql",
  generates: { ...client("mobile"), ...client("web") },
  silent: true,
};

export default config;
