/** What the caller may administer (global roles and project roles): the header needs it to show the Admin link. */
import { graphql } from "../gql";

export const AccessQuery = graphql(`
  query Access {
    me {
      subject
      roles
      memberships {
        projectId
        role
      }
    }
  }
`);
