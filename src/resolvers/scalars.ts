import { DateTimeResolver } from "graphql-scalars";
import { builder } from "../../schema/builder.ts";

builder.addScalarType("DateTime", DateTimeResolver);
